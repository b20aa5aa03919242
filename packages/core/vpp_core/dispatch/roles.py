"""The report's per-role breakdown (pure): what the charge-only part of the fleet (OCPP 2.0.1
stations, 2.1 sessions without an allowed bidirectional mode) did, apart from the
bidirectional part, so that an operator sees which part of a dispatch each could serve."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vpp_core.dispatch.ledger import SessionRecord

__all__ = ["RoleShare", "role_breakdown"]

ROLES = ("charge_only", "bidirectional")


@dataclass(frozen=True, slots=True)
class RoleShare:
    """One role's part of a dispatch; powers and energies signed (negative = discharge)."""

    role: str
    sessions_considered: int  # in the dispatch's scope when it began
    sessions_dispatched: int  # sent a profile
    first_setpoint_w: float  # sum of the first setpoints sent
    last_setpoint_w: float  # sum of the setpoints in force at the end
    metered_energy_wh: float  # from the meter registers
    sampled_energy_wh: float  # integral of the reported power


def role_breakdown(records: Iterable[SessionRecord]) -> tuple[RoleShare, ...]:
    """One :class:`RoleShare` per role, in ``ROLES`` order (roles with no session included)."""
    by_role: dict[str, list[SessionRecord]] = {role: [] for role in ROLES}
    for record in records:
        by_role.setdefault(record.role, []).append(record)
    return tuple(_share(role, group) for role, group in by_role.items())


def _share(role: str, records: list[SessionRecord]) -> RoleShare:
    sent = [r for r in records if r.profile_sent]
    return RoleShare(
        role=role,
        sessions_considered=len(records),
        sessions_dispatched=len(sent),
        first_setpoint_w=sum(r.first_setpoint_w for r in sent),
        last_setpoint_w=sum(r.setpoint_w for r in sent),
        metered_energy_wh=sum(r.metered_energy_wh for r in records),
        sampled_energy_wh=sum(r.sampled_energy_wh for r in records),
    )
