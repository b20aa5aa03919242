"""A timeline that drives the pure control law with an injected clock (no process, no I/O)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.law import (
    EvLimits,
    LawOutput,
    LawState,
    Lease,
    Observation,
    initial_state,
    step,
)
from v2g_gateway.control.ports import StageMeasurement, StageRatings

RATINGS = StageRatings(max_charge_w=11000.0, max_discharge_w=11000.0)
EV = EvLimits(max_charge_w=11000.0, max_discharge_w=11000.0)


def measurement(
    *,
    power_w: float = 0.0,
    soc_pct: float | None = 60.0,
    grid_freq_hz: float = 50.0,
    ev_connected: bool = True,
    faults: frozenset[str] = frozenset(),
) -> StageMeasurement:
    return StageMeasurement(
        power_w=power_w,
        soc_pct=soc_pct,
        grid_freq_hz=grid_freq_hz,
        grid_voltage_v=230.0,
        ev_connected=ev_connected,
        energy_import_wh=0.0,
        energy_export_wh=0.0,
        faults=faults,
    )


@dataclass
class Timeline:
    """``advance(dt)`` moves the injected clock and runs one step. By default the module
    follows the command exactly and the sensor agrees with it; with ``module_tau_s`` > 0 the
    module's power follows the last written command as a first-order lag (read before the
    step writes, like the loop does), 0 W at once when the contactor is open."""

    cfg: ControlSection = field(default_factory=ControlSection)
    ratings: StageRatings = RATINGS
    ev: EvLimits = EV
    now: float = 0.0
    soc_pct: float | None = 60.0
    lease: Lease | None = None
    last_contact_s: float = 0.0
    stopping: bool = False
    ev_hold: bool = False
    module_tau_s: float = 0.0
    module_w: float = 0.0
    state: LawState = field(init=False)
    outputs: list[tuple[float, LawOutput]] = field(default_factory=list)
    last_obs: Observation | None = None

    def __post_init__(self) -> None:
        self.state = initial_state(self.now)

    def grant(self, power_w: float, valid_for_s: float) -> None:
        self.lease = Lease(power_w, self.now + valid_for_s, self.now)

    def contact(self) -> None:
        self.last_contact_s = self.now

    def advance(
        self,
        dt_s: float,
        *,
        m: StageMeasurement | str | None = "follow",
        sensor_w: float | str | None = "follow",
    ) -> LawOutput:
        self.now += dt_s
        self._module_follows(dt_s)
        if m == "follow":
            m = measurement(power_w=self.module_w, soc_pct=self.soc_pct)
        assert not isinstance(m, str)
        if sensor_w == "follow":
            sensor_w = None if m is None else m.power_w
        assert not isinstance(sensor_w, str)
        obs = Observation(
            self.now, m, sensor_w, self.last_contact_s, self.lease, self.stopping, self.ev_hold
        )
        out = step(self.state, obs, self.cfg, self.ratings, self.ev)
        self.state = out.state
        self.last_obs = obs
        self.outputs.append((self.now, out))
        return out

    def _module_follows(self, dt_s: float) -> None:
        written = self.state.commanded_w if self.state.contactor_closed else 0.0
        if self.module_tau_s <= 0.0 or not self.state.contactor_closed:
            self.module_w = written
        else:
            self.module_w += (written - self.module_w) * -math.expm1(-dt_s / self.module_tau_s)

    def run_for(self, seconds: float, **kwargs: object) -> list[LawOutput]:
        period = self.cfg.period_s
        outs = []
        for _ in range(round(seconds / period)):
            outs.append(self.advance(period, **kwargs))  # type: ignore[arg-type]
        return outs

    def events(self) -> list[EventCode]:
        return [code for _, out in self.outputs for code in out.events]
