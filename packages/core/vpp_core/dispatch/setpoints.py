"""Which setpoints a re-plan sends (pure): dead-bands, and the tracking contract's ceiling.

Sign convention: W, positive = into the EV, negative = out of it; ``sign`` is the dispatch
direction's (-1 discharge, +1 charge), so ``sign * power`` is a magnitude in that direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.ledger import SessionRecord
from vpp_core.dispatch.model import SessionKey

__all__ = ["Change", "commanded_w", "setpoint_changes"]

Change = tuple[SessionRecord, float]  # a session and its new setpoint (W, signed)
#: Below this a change is rounding, sent only when the ceiling needs it.
_NOISE_W = 1.0


def setpoint_changes(
    sessions: Iterable[SessionRecord],
    allocations: Mapping[SessionKey, float],
    *,
    sign: float,
    target_w: float,
    ceiling_w: float,
    config: DispatchConfig,
) -> list[Change]:
    """Setpoints to send: new sessions, changes beyond the per-session dead-band, and every
    change once their sum exceeds the fleet dead-band (small steps add up across a fleet),
    or once the setpoints left as they are would put the fleet above ``ceiling_w`` (the
    contract's, a magnitude). Reductions first, so the fleet is never briefly above what it
    was."""
    records = list(sessions)
    candidates: list[tuple[SessionRecord, float, bool]] = []
    trims: list[Change] = []
    for rec in records:
        new = allocations.get(rec.key, 0.0)
        if rec.drop_reason or (not rec.profile_sent and new == 0.0):
            continue
        step_w = abs(new - rec.setpoint_w)
        if not rec.profile_sent or rec.needs_resend or (new == 0.0) != (rec.setpoint_w == 0.0):
            candidates.append((rec, new, True))
        elif step_w > _NOISE_W:
            candidates.append((rec, new, step_w > config.setpoint_deadband_w))
        elif step_w:
            trims.append((rec, new))
    drift_w = abs(sum(new - rec.setpoint_w for rec, new, _ in candidates))
    send_all = drift_w > config.fleet_deadband_frac * abs(target_w)
    chosen = [(rec, new) for rec, new, big in candidates if big or send_all]
    if commanded_w(records, chosen, sign=sign) > ceiling_w + 1e-6:
        chosen = [(rec, new) for rec, new, _ in candidates] + trims
    return sorted(chosen, key=lambda change: sign * (change[1] - change[0].setpoint_w))


def commanded_w(records: Iterable[SessionRecord], changes: list[Change], *, sign: float) -> float:
    """Fleet setpoint (magnitude in the dispatch direction) once ``changes`` are applied."""
    in_force = sum(r.setpoint_w for r in records if not r.drop_reason)
    return sign * (in_force + sum(new - rec.setpoint_w for rec, new in changes))
