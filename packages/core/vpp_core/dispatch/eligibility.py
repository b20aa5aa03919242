"""Who may be dispatched, and in which direction (pure; issue 13 item 5, issue 18).

Discharge needs every layer to agree: the station speaks OCPP 2.1 (2.0.1 has no setpoint,
dischargeLimit or operationMode, so a 2.0.1 station is charge-only: demand response by a
reduced charging limit), the EV requested a bidirectional energy transfer mode in its last
NotifyEVChargingNeeds (``DC``, not ``DC_BPT``, is charge-only whatever ``maxDischargePower``
it declares), and the last NotifyAllowedEnergyTransfer the CSMS sent, if any, left a
bidirectional mode. An EV that asked for priority charging (NotifyPriorityCharging) leaves
every dispatch until it withdraws the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from v2g_common.energy_transfer import BIDIRECTIONAL_MODES, any_bidirectional

__all__ = [
    "OCPP_201",
    "PRIORITY_REASON",
    "Role",
    "charge_only_reason",
    "priority_reason",
    "role_of",
]

OCPP_201 = "ocpp2.0.1"
#: ``charge_only``: 2.0.1 stations and 2.1 sessions without an allowed BPT mode;
#: ``bidirectional``: 2.1 sessions that may discharge.
Role = Literal["charge_only", "bidirectional"]
PRIORITY_REASON = "priority charging requested by the EV (NotifyPriorityCharging)"


def charge_only_reason(
    *,
    ocpp_version: str | None,
    requested_energy_transfer: str | None,
    allowed_energy_transfer: Sequence[str] | None,
) -> str | None:
    """Why a session may not be planned for discharge, or None when it may."""
    if ocpp_version == OCPP_201:
        return "OCPP 2.0.1 station: charge-only (2.0.1 profiles cannot command discharge)"
    if requested_energy_transfer is None:
        return "no requested energy transfer mode reported: charge-only"
    if requested_energy_transfer not in BIDIRECTIONAL_MODES:
        return (
            f"requested energy transfer {requested_energy_transfer} is not bidirectional: "
            "charge-only"
        )
    if allowed_energy_transfer is not None and not any_bidirectional(allowed_energy_transfer):
        allowed = ", ".join(allowed_energy_transfer) or "none"
        return f"NotifyAllowedEnergyTransfer allowed no bidirectional mode ({allowed}): charge-only"
    return None


def priority_reason(priority_charging: bool) -> str | None:
    """Why a session may take part in no dispatch at all (either direction), or None."""
    return PRIORITY_REASON if priority_charging else None


def role_of(charge_only: str | None) -> Role:
    """The report's role of a session from its :func:`charge_only_reason`."""
    return "bidirectional" if charge_only is None else "charge_only"
