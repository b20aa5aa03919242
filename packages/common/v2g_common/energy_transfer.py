"""OCPP 2.1 energy-transfer modes (``EnergyTransferModeEnumType``): which ones move energy
both ways. Shared by the station (what it renegotiates after NotifyAllowedEnergyTransfer, what
it refuses to execute) and the core's dispatch (who may be planned for discharge). Pure data."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BIDIRECTIONAL_MODES", "any_bidirectional"]

#: The bidirectional power transfer (BPT) modes; every other mode (``DC``, ``AC_three_phase``,
#: ``AC_DER``, ``WPT``, ... and all of 2.0.1's) charges only.
BIDIRECTIONAL_MODES = frozenset({"AC_BPT", "AC_BPT_DER", "DC_BPT", "DC_ACDP_BPT"})


def any_bidirectional(modes: Iterable[str]) -> bool:
    """Whether any of ``modes`` is a bidirectional one."""
    return any(mode in BIDIRECTIONAL_MODES for mode in modes)
