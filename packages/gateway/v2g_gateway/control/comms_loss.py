"""The comms-loss envelope: when the fail-safe's ramp to 0 W must start so that the output is
at ~0 A when the contactor opens, within one period of ``comms_loss_timeout_s`` after the last
CSMS contact (at the last step before it: :func:`open_after_s`).

Pure functions and values, no clock: the law calls them once per step.

The ramp needs ``|P| / ramp_w_per_s`` from the present command ``P``; the module then needs
time to follow the command's last step down to ~0 A (its lag, plus the one period between a
write and the read that sees it). That settle time is *measured*: every time the command stops
moving, :class:`SettleTracker` times how long the measured power takes to come within
``contactor_open_max_a`` of it; the longest such time (up to ``module_settle_max_s``: beyond
that the module is not lagging but held back, by the EV for instance) or ``module_settle_s``,
whichever is larger, is the margin. Two periods cover the step quantisation of the ramp's
start and of its last step; ``comms_loss_margin_s`` what the measurement cannot promise (late
cycles on a loaded CPU stretch the ramp, a module may settle slower on the way down). The ramp
never starts before half the timeout: a link that answers more often than that never derates
the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.ports import StageMeasurement

__all__ = [
    "SettleTracker",
    "current_a",
    "open_after_s",
    "ramp_lead_s",
    "ramp_start_s",
    "settle_margin_s",
]

#: Command changes smaller than this (W) are ramp rounding residue, not a move.
_MOVE_W = 1e-6


@dataclass(frozen=True, slots=True)
class SettleTracker:
    """Times how long the measured power takes to follow the command after it stops moving.

    ``since_s`` is when the command took its present value (``None``: no timing running);
    ``settle_s`` is the longest settle time measured so far."""

    moving: bool = False
    since_s: float | None = None
    settle_s: float = 0.0

    def update(
        self,
        *,
        last_step_s: float,
        now_s: float,
        previous_w: float,
        commanded_w: float,
        m: StageMeasurement | None,
        cfg: ControlSection,
    ) -> SettleTracker:
        """The tracker after one step that commands ``commanded_w`` (the previous step, at
        ``last_step_s``, commanded ``previous_w``) and read ``m`` before writing it."""
        if abs(commanded_w - previous_w) > _MOVE_W:
            return self if self.moving else SettleTracker(True, None, self.settle_s)
        since = last_step_s if self.moving else self.since_s
        if since is None:
            return self
        if m is not None and abs(m.power_w - commanded_w) <= _tolerance_w(m, cfg):
            return SettleTracker(False, None, max(self.settle_s, now_s - since))
        if now_s - since > cfg.module_settle_max_s:
            return SettleTracker(False, None, self.settle_s)  # held back, not lagging
        return SettleTracker(False, since, self.settle_s) if self.moving else self


def _tolerance_w(m: StageMeasurement, cfg: ControlSection) -> float:
    return cfg.contactor_open_max_a * m.grid_voltage_v


def settle_margin_s(cfg: ControlSection, measured_settle_s: float) -> float:
    """The module's settle time the envelope allows for."""
    return min(max(cfg.module_settle_s, measured_settle_s), cfg.module_settle_max_s)


def open_after_s(cfg: ControlSection) -> float:
    """The silence after which the contactor opens: one period before the timeout, so that
    the open (at that step, after the step's own device I/O) lands no later than one period
    after the timeout even when the step runs late; never before half the timeout."""
    timeout_s = cfg.comms_loss_timeout_s
    return timeout_s - min(cfg.period_s, timeout_s / 2)


def ramp_lead_s(commanded_w: float, cfg: ControlSection, measured_settle_s: float) -> float:
    """How long before the open the ramp to 0 W must start from ``commanded_w``."""
    return (
        abs(commanded_w) / cfg.ramp_w_per_s
        + settle_margin_s(cfg, measured_settle_s)
        + 2 * cfg.period_s
        + cfg.comms_loss_margin_s
    )


def ramp_start_s(commanded_w: float, cfg: ControlSection, measured_settle_s: float) -> float:
    """The silence from which the ramp to 0 W runs (never before half the timeout)."""
    lead_s = ramp_lead_s(commanded_w, cfg, measured_settle_s)
    return max(open_after_s(cfg) - lead_s, cfg.comms_loss_timeout_s / 2)


def current_a(m: StageMeasurement | None) -> float:
    """The output current as the module measures it (single-phase equivalent, ``|P| / V``:
    an upper bound of each phase's current); ``inf`` when unknown."""
    if m is None:
        return math.inf
    if m.grid_voltage_v > 0:
        return abs(m.power_w) / m.grid_voltage_v
    return 0.0 if m.power_w == 0.0 else math.inf
