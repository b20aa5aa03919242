"""One simulated charger: module model + SunSpec image + INA228 + EV link + contactor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from v2g_gateway.control.ports import Contactor, EvChargingNeeds, EvLink
from v2g_sim.ev import EvSpec, charging_needs
from v2g_sim.grid_frequency import GridFrequency
from v2g_sim.i2c_bus import SimulatedI2cBus, SimulatedIna228
from v2g_sim.module import ModuleSpec, PowerModuleModel
from v2g_sim.sunspec_image import ScaleFactors, SunSpecImage

__all__ = ["SimContactor", "SimEvLink", "SimulatedCharger"]

SENSOR_ADDRESS = 0x40


@dataclass(slots=True)
class SimulatedCharger:
    """Everything behind one Modbus device id. Build with :meth:`create`."""

    device_id: int
    model: PowerModuleModel
    image: SunSpecImage
    sensor: SimulatedIna228
    i2c: SimulatedI2cBus
    plugged_at: datetime | None = None
    _initial_ev: EvSpec | None = field(default=None)

    @classmethod
    def create(
        cls,
        device_id: int = 1,
        *,
        seed: int = 0,
        spec: ModuleSpec | None = None,
        scale_factors: ScaleFactors | None = None,
        sensor_gain_error: float = 0.0,
        sensor_offset_error_w: float = 0.0,
        grid: GridFrequency | None = None,
    ) -> SimulatedCharger:
        model = PowerModuleModel(spec=spec or ModuleSpec(), seed=seed, grid=grid)
        image = SunSpecImage(
            model,
            sf=scale_factors or ScaleFactors(),
            identity=("V2G-SIM", "BIDI-11", "1.0.0", f"SIM{device_id:04d}"),
        )
        sensor = SimulatedIna228(
            model,
            gain_error=sensor_gain_error,
            offset_error_w=sensor_offset_error_w,
            seed=seed + 1,
        )
        return cls(device_id, model, image, sensor, SimulatedI2cBus({SENSOR_ADDRESS: sensor}))

    def plug_in(self, ev: EvSpec, *, now: datetime) -> None:
        self.model.plug_in(ev)
        self.plugged_at = now

    def plug_out(self) -> None:
        self.model.plug_out()
        self.plugged_at = None

    def charging_needs(self) -> EvChargingNeeds | None:
        """What the plugged-in EV declares now, ``None`` without an EV."""
        m = self.model
        if m.ev is None or m.soc_pct is None:
            return None
        plugged_at = self.plugged_at or datetime.now(UTC)
        return charging_needs(m.ev, soc_pct=m.soc_pct, plugged_at=plugged_at)

    def status(self) -> dict[str, object]:
        """A JSON-ready snapshot (the control socket's ``status``)."""
        m = self.model
        return {
            "device_id": self.device_id,
            "sim_time_s": round(m.now_s, 3),
            "setpoint_w": m.setpoint_w,
            "effective_setpoint_w": m.effective_setpoint_w(),
            "power_w": round(m.power_w, 3),
            "energized": m.energized,
            "contactor_closed": m.contactor_closed,
            "ev_connected": m.ev is not None,
            "ev_id": m.ev.ev_id if m.ev else None,
            "soc_pct": None if m.soc_pct is None else round(m.soc_pct, 4),
            "energy_absorbed_wh": m.energy_absorbed_wh,
            "energy_injected_wh": m.energy_injected_wh,
            "grid_freq_hz": round(m.grid_freq_hz, 4),
            "grid_voltage_v": round(m.grid_voltage_v, 2),
            "faults": sorted(m.faults),
            "revert_remaining_s": m.revert_remaining_s,
            "reverted": m.revert.reverted,  # the 704 revert timer set the output, no write since
            "sensor_gain_error": self.sensor.gain_error,
            "sensor_offset_error_w": self.sensor.offset_error_w,
        }


class SimEvLink:
    """``EvLink`` of a simulated charger: the plugged-in EV's declared needs."""

    def __init__(self, charger: SimulatedCharger) -> None:
        self._charger = charger

    async def read_charging_needs(self) -> EvChargingNeeds | None:
        return self._charger.charging_needs()


class SimContactor:
    """``Contactor`` of a simulated charger: opening it cuts the module's output at once."""

    def __init__(self, model: PowerModuleModel) -> None:
        self._model = model

    @property
    def closed(self) -> bool:
        return self._model.contactor_closed

    def open(self) -> None:
        self._model.contactor_closed = False
        self._model.power_w = 0.0

    def close(self) -> None:
        self._model.contactor_closed = True


if TYPE_CHECKING:  # structural conformance to the control loop's ports, checked by mypy
    _ev_link: type[EvLink] = SimEvLink
    _contactor: type[Contactor] = SimContactor
