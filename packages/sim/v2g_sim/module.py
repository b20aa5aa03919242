"""The simulated power module with an EV battery behind it: a steppable physical model.

Time only moves through :meth:`PowerModuleModel.step` (``dt_s``), so tests drive it with an
injected clock; the server steps it from the event loop's monotonic clock. Deterministic for
a given seed. Sign: ``power_w`` positive into the EV.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from v2g_sim.ev import EvSpec
from v2g_sim.grid_frequency import GridFrequency

__all__ = ["FAULT_KINDS", "ModuleSpec", "PowerModuleModel", "RevertTimer"]

#: Injectable faults. All but ``comms_timeout`` trip the module (output to 0 W at once).
FAULT_KINDS = (
    "ground_fault",
    "over_temp",
    "frequency_excursion",
    "dc_over_voltage",
    "ac_over_voltage",
    "ac_under_voltage",
    "comms_timeout",
)


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    """Nameplate and dynamics of the simulated module."""

    rated_charge_w: float = 11_000.0
    rated_discharge_w: float = 11_000.0
    lag_tau_s: float = 0.8
    ramp_w_per_s: float = 10_000.0
    deadband_w: float = 20.0
    efficiency: float = 0.95
    grid_voltage_v: float = 230.0
    grid_freq_hz: float = 50.0
    dc_link_voltage_v: float = 400.0
    excursion_freq_hz: float = 51.6
    over_temp_c: float = 95.0
    ambient_temp_c: float = 35.0


@dataclass(slots=True)
class RevertTimer:
    """704 ``WSetRvrt*``: with no setpoint write for ``timeout_s`` the module goes to
    ``revert_power_w`` by itself."""

    enabled: bool = False
    timeout_s: float = 0.0
    revert_power_w: float = 0.0
    reverted: bool = False


@dataclass(slots=True)
class _Grid:
    freq_hz: float
    voltage_v: float


@dataclass(slots=True)
class PowerModuleModel:
    """Module + EV state. Mutated only by its methods."""

    spec: ModuleSpec = field(default_factory=ModuleSpec)
    seed: int = 0
    now_s: float = 0.0
    setpoint_w: float = 0.0
    power_w: float = 0.0
    energized: bool = True
    contactor_closed: bool = True
    energy_absorbed_wh: float = 0.0
    energy_injected_wh: float = 0.0
    ev: EvSpec | None = None
    soc_pct: float | None = None
    faults: set[str] = field(default_factory=set)
    revert: RevertTimer = field(default_factory=RevertTimer)
    last_setpoint_write_s: float = 0.0
    temperature_c: float = 35.0
    #: The site's grid frequency source; ``None``: a slow random walk around the nominal.
    grid: GridFrequency | None = None
    _target_w: float = 0.0
    _rng: random.Random = field(init=False)
    _grid: _Grid = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._grid = _Grid(self.spec.grid_freq_hz, self.spec.grid_voltage_v)
        self.temperature_c = self.spec.ambient_temp_c

    # --- commands (what the Modbus map and control socket call) -------------------------
    def command_setpoint(self, power_w: float) -> None:
        """A setpoint write (704 WSet): restarts the revert timer."""
        self.setpoint_w = power_w
        self.last_setpoint_write_s = self.now_s
        self.revert.reverted = False

    def program_revert(self, *, enabled: bool, timeout_s: float, revert_power_w: float) -> None:
        self.revert = RevertTimer(enabled, timeout_s, revert_power_w)
        self.last_setpoint_write_s = self.now_s

    def plug_in(self, ev: EvSpec) -> None:
        self.ev = ev
        self.soc_pct = ev.soc_pct

    def plug_out(self) -> None:
        self.ev = None
        self.soc_pct = None
        self.power_w = 0.0
        self._target_w = 0.0

    def inject_fault(self, kind: str) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        self.faults.add(kind)
        if kind == "over_temp":
            self.temperature_c = self.spec.over_temp_c + 10.0
        if self.tripped:
            self.power_w = 0.0
            self._target_w = 0.0

    def clear_fault(self, kind: str | None = None) -> None:
        """Clear one fault, or all with ``None``."""
        if kind is None:
            self.faults.clear()
        else:
            self.faults.discard(kind)
        if "over_temp" not in self.faults:
            self.temperature_c = self.spec.ambient_temp_c

    # --- derived state --------------------------------------------------------------------
    @property
    def tripped(self) -> bool:
        return bool(self.faults - {"comms_timeout"})

    @property
    def comms_down(self) -> bool:
        return "comms_timeout" in self.faults

    @property
    def grid_freq_hz(self) -> float:
        if "frequency_excursion" in self.faults:
            return self.spec.excursion_freq_hz
        if self.grid is not None:
            return self.grid.freq_hz(self.now_s)
        return self._grid.freq_hz

    @property
    def grid_voltage_v(self) -> float:
        if "ac_over_voltage" in self.faults:
            return self.spec.grid_voltage_v * 1.15
        if "ac_under_voltage" in self.faults:
            return self.spec.grid_voltage_v * 0.85
        return self._grid.voltage_v

    @property
    def revert_remaining_s(self) -> float | None:
        if not self.revert.enabled:
            return None
        return max(0.0, self.revert.timeout_s - (self.now_s - self.last_setpoint_write_s))

    def effective_setpoint_w(self) -> float:
        """What the module aims for now: the setpoint within every limit, 0 when it may not."""
        if self.ev is None or self.tripped or not self.energized or not self.contactor_closed:
            return 0.0
        ev, soc = self.ev, self.soc_pct if self.soc_pct is not None else 0.0
        max_ch = min(self.spec.rated_charge_w, ev.max_charge_w)
        max_dis = min(self.spec.rated_discharge_w, ev.max_discharge_w if ev.bidirectional else 0.0)
        if soc >= ev.max_soc_pct:
            max_ch = 0.0
        if soc <= ev.min_soc_pct:
            max_dis = 0.0
        return min(max(self.setpoint_w, -max_dis), max_ch)

    # --- time -----------------------------------------------------------------------------
    def step(self, dt_s: float) -> None:
        """Advance the model by ``dt_s`` seconds (sub-stepped at 50 ms for accuracy)."""
        if dt_s < 0:
            raise ValueError("time only moves forward")
        while dt_s > 1e-12:
            h = min(dt_s, 0.05)
            self._substep(h)
            dt_s -= h

    def _substep(self, h: float) -> None:
        self.now_s += h
        self._check_revert()
        self._walk_grid(h)
        wanted = self.effective_setpoint_w()
        if wanted == 0.0 or abs(wanted - self._target_w) > self.spec.deadband_w:
            self._target_w = wanted
        old = self.power_w
        if self.tripped or self.ev is None or not self.contactor_closed:
            new = 0.0
        else:
            step = (self._target_w - old) * (1.0 - math.exp(-h / self.spec.lag_tau_s))
            limit = self.spec.ramp_w_per_s * h
            new = old + max(-limit, min(limit, step))
        self.power_w = new
        self._account(old, new, h)

    def _check_revert(self) -> None:
        r = self.revert
        if r.enabled and not r.reverted and self.now_s - self.last_setpoint_write_s >= r.timeout_s:
            self.setpoint_w = r.revert_power_w
            r.reverted = True

    def _walk_grid(self, h: float) -> None:
        g, s = self._grid, self.spec
        g.freq_hz += (s.grid_freq_hz - g.freq_hz) * 0.1 * h + self._rng.gauss(0, 0.002) * h**0.5
        g.voltage_v += (s.grid_voltage_v - g.voltage_v) * 0.1 * h + self._rng.gauss(0, 0.2) * h**0.5

    def _account(self, old_w: float, new_w: float, h: float) -> None:
        """Energy registers count exactly the modelled (piecewise-linear) AC power."""
        pos, neg = _split_trapezoid(old_w, new_w, h)
        self.energy_absorbed_wh += pos / 3600.0
        self.energy_injected_wh += neg / 3600.0
        if self.ev is not None and self.soc_pct is not None:
            dc_wh = (pos * self.spec.efficiency - neg / self.spec.efficiency) / 3600.0
            self.soc_pct = min(
                100.0, max(0.0, self.soc_pct + dc_wh / self.ev.battery_capacity_wh * 100)
            )


def _split_trapezoid(a: float, b: float, h: float) -> tuple[float, float]:
    """Integral over ``h`` of a line from ``a`` to ``b``, split into positive and negative
    parts (magnitudes, W·s)."""
    if a >= 0 and b >= 0:
        return (a + b) / 2 * h, 0.0
    if a <= 0 and b <= 0:
        return 0.0, -(a + b) / 2 * h
    t0 = h * a / (a - b)
    first, second = a / 2 * t0, b / 2 * (h - t0)
    return (first, -second) if a > 0 else (second, -first)
