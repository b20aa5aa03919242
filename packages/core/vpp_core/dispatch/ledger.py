"""What a running dispatch records: one interval per control period and one record per session.

The report is computed from these (``report.build_report``); the runner only appends.
Powers are signed (negative = discharge); ``available_w``/``deployable_w`` are magnitudes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vpp_core.dispatch.model import SessionKey

__all__ = ["IntervalRecord", "SessionRecord"]


@dataclass(frozen=True, slots=True)
class IntervalRecord:
    """[t_start, t_end): target, what the plan in force committed (target plus closed-loop
    correction, within headroom), the sum of setpoints in force, what dropped-out sessions had
    been given, what was measured from the sessions still present, and the plan's capacity."""

    t_start: datetime
    t_end: datetime
    target_w: float
    committed_w: float
    planned_w: float
    dropout_w: float
    delivered_w: float
    available_w: float
    deployable_w: float

    @property
    def duration_s(self) -> float:
        return (self.t_end - self.t_start).total_seconds()


@dataclass(slots=True)
class SessionRecord:
    """One session's part in a dispatch (mutated by the runner only)."""

    key: SessionKey
    #: ``charge_only`` (OCPP 2.0.1, no BPT mode) or ``bidirectional`` (eligibility.role_of)
    role: str = "bidirectional"
    first_setpoint_w: float = 0.0
    setpoint_w: float = 0.0
    profile_sent: bool = False
    import_wh_start: float | None = None
    export_wh_start: float | None = None
    import_wh: float | None = None
    export_wh: float | None = None
    sampled_energy_wh: float = 0.0  # signed integral of measured power
    dropped_at: datetime | None = None
    drop_reason: str | None = None
    ended_at: datetime | None = None  # the session ended (TransactionEvent Ended) in the window
    #: Dropped after a refused or failed command: the setpoint its station may still apply.
    stranded_w: float = 0.0
    lagging: bool = False
    rejoins: int = 0
    needs_resend: bool = False  # back after a drop-out: send the full profile again
    end_status: str | None = None  # Accepted/Unknown of the clear (or resume profile), or error
    notes: list[str] = field(default_factory=list)

    @property
    def metered_energy_wh(self) -> float:
        """Net energy into the EV from the meter registers (negative = out), 0 if unknown."""
        i0, e0, i1, e1 = self.import_wh_start, self.export_wh_start, self.import_wh, self.export_wh
        if i0 is None or e0 is None or i1 is None or e1 is None:
            return 0.0
        return (i1 - i0) - (e1 - e0)
