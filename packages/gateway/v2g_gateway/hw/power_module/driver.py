"""SunSpec DER power module driver; satisfies ``v2g_gateway.control.ports.PowerStage``.

Sign: our ``power_w`` is positive into the EV. The standard map counts ``W``/``WSet``
positive for injection into the grid (discharge), so the driver negates at this boundary;
a vendor map can say ``absorption_positive``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from v2g_gateway.control.ports import PowerStage, StageMeasurement, StageRatings
from v2g_gateway.hw.errors import ModuleFaultError, PowerModuleError
from v2g_gateway.hw.power_module.codec import decode_model, encode_point, fault_codes, unscale
from v2g_gateway.hw.power_module.discovery import ModelChain, discover_models
from v2g_gateway.hw.power_module.register_map import RegisterMap, standard_register_map
from v2g_gateway.hw.power_module.transport import RegisterLink

__all__ = ["ModuleIdentity", "ModuleStatus", "SunSpecPowerModule"]

_MEASUREMENT_POINTS = ("InvSt", "Alrm", "W", "LNV", "Hz", "TotWhInj", "TotWhAbs")
_WSET_ENABLED = 1
_WSET_MODE_WATTS = 1

Values = dict[str, float | int | str | None]


@dataclass(frozen=True, slots=True)
class ModuleIdentity:
    """Model 1 common block."""

    manufacturer: str | None
    model: str | None
    version: str | None
    serial_number: str | None


@dataclass(frozen=True, slots=True)
class ModuleStatus:
    """701 state beyond the port's measurement: operating state, grid connection, cabinet
    temperature (``None`` where the module does not implement a point)."""

    inverter_state: int | None
    grid_connected: bool | None
    faults: frozenset[str]
    cabinet_temp_c: float | None


class SunSpecPowerModule:
    """A bidirectional power stage speaking SunSpec models 1/701/702/703/704/713.

    Call :meth:`discover` once (the other methods do it on first use). Every method raises a
    :class:`~v2g_gateway.hw.errors.PowerModuleError` subclass; none hangs.
    """

    def __init__(
        self,
        link: RegisterLink,
        *,
        register_map: RegisterMap | None = None,
        base_addresses: tuple[int, ...] = (40000, 0, 50000),
        cache_scale_factors: bool = True,
    ) -> None:
        self._link = link
        self._map = register_map or standard_register_map()
        self._bases = base_addresses
        self._chain: ModelChain | None = None
        self._cache_sf = cache_scale_factors
        self._sf_cache: dict[tuple[int, str], int] = {}
        self._sign = -1.0 if self._map.power_sign == "injection_positive" else 1.0

    async def discover(self) -> ModelChain:
        """Find the model chain (again) and cache it."""
        self._chain = await discover_models(self._link.read, self._bases)
        self._sf_cache.clear()
        return self._chain

    async def _models(self) -> ModelChain:
        return self._chain if self._chain is not None else await self.discover()

    async def read_points(self, model_id: int, names: Iterable[str]) -> Values:
        """Read and scale the named points of one model in one span. Scale factors are read
        alongside the first time, then cached until :meth:`discover` (unless disabled)."""
        spec = self._map.model(model_id)
        points = [spec.point(n) for n in names]
        known = {k[1]: v for k, v in self._sf_cache.items() if k[0] == model_id}
        sf_names = {p.sf for p in points if p.sf is not None and p.sf not in known}
        points += [spec.point(name) for name in sorted(sf_names)]
        first = min(p.offset for p in points)
        end = max(p.offset + p.size for p in points)
        base = (await self._models()).address(model_id)
        words = await self._link.read(base + first, end - first)
        values = decode_model(words, spec, first_offset=first, known_sf=known)
        if self._cache_sf:
            for name in sf_names:
                value = values.get(name)
                if isinstance(value, int):
                    self._sf_cache[(model_id, name)] = value
        return values

    async def _write_points(self, model_id: int, raw: dict[str, int]) -> None:
        """Write contiguous points in one request (raw values, already scaled)."""
        spec = self._map.model(model_id)
        points = sorted((spec.point(n) for n in raw), key=lambda p: p.offset)
        words: list[int] = []
        for prev, point in zip([None, *points], points, strict=False):
            if prev is not None and prev.offset + prev.size != point.offset:
                raise PowerModuleError(f"points {prev.name} and {point.name} not contiguous")
            words += encode_point(raw[point.name], point)
        base = (await self._models()).address(model_id)
        await self._link.write(base + points[0].offset, words)

    async def read_identity(self) -> ModuleIdentity:
        v = await self.read_points(1, ("Mn", "Md", "Vr", "SN"))
        return ModuleIdentity(
            *(None if v[k] is None else str(v[k]) for k in ("Mn", "Md", "Vr", "SN"))
        )

    async def read_ratings(self) -> StageRatings:
        v = await self.read_points(702, ("WMaxRtg", "WChaRteMaxRtg", "WDisChaRteMaxRtg"))
        wmax = _number(v["WMaxRtg"], "702 WMaxRtg")
        charge = v["WChaRteMaxRtg"]
        discharge = v["WDisChaRteMaxRtg"]
        return StageRatings(
            max_charge_w=wmax if charge is None else _number(charge, ""),
            max_discharge_w=wmax if discharge is None else _number(discharge, ""),
        )

    async def read_faults(self) -> frozenset[str]:
        v = await self.read_points(701, ("InvSt", "Alrm"))
        return fault_codes(_opt_int(v["InvSt"]), _opt_int(v["Alrm"]))

    async def read_status(self) -> ModuleStatus:
        v = await self.read_points(701, ("InvSt", "ConnSt", "Alrm", "TmpCab"))
        inv_st, conn_st, temp = _opt_int(v["InvSt"]), _opt_int(v["ConnSt"]), v["TmpCab"]
        return ModuleStatus(
            inverter_state=inv_st,
            grid_connected=None if conn_st is None else conn_st == 1,
            faults=fault_codes(inv_st, _opt_int(v["Alrm"])),
            cabinet_temp_c=float(temp) if isinstance(temp, int | float) else None,
        )

    async def read_measurement(self) -> StageMeasurement:
        chain = await self._models()
        v = await self.read_points(701, _MEASUREMENT_POINTS)
        soc = None
        if 713 in chain.addresses:
            soc_raw = (await self.read_points(713, ("SoC",)))["SoC"]
            soc = None if soc_raw is None else float(soc_raw)
        voltage = v["LNV"]
        if voltage is None:  # three-phase modules may publish only phase voltages
            voltage = (await self.read_points(701, ("VL1",)))["VL1"]
        inj = v["TotWhInj"]
        absorbed = v["TotWhAbs"]
        # Energy: "absorbed" from the grid is what went into the EV (import to the EV).
        import_wh, export_wh = (absorbed, inj) if self._sign < 0 else (inj, absorbed)
        return StageMeasurement(
            power_w=self._sign * _number(v["W"], "701 W") + 0.0,
            soc_pct=soc,
            grid_freq_hz=_number(v["Hz"], "701 Hz"),
            grid_voltage_v=_number(voltage, "701 LNV/VL1"),
            ev_connected=soc is not None,
            energy_import_wh=_number(import_wh, "701 TotWh"),
            energy_export_wh=_number(export_wh, "701 TotWh"),
            faults=fault_codes(_opt_int(v["InvSt"]), _opt_int(v["Alrm"])),
        )

    async def _wset_scale(self) -> int:
        cached = self._sf_cache.get((704, "WSet_SF"))
        if cached is not None:
            return cached
        sf = (await self.read_points(704, ("WSet_SF",)))["WSet_SF"]
        if not isinstance(sf, int):
            raise PowerModuleError("704 WSet_SF: scale factor not implemented by the module")
        if self._cache_sf:
            self._sf_cache[(704, "WSet_SF")] = sf
        return sf

    async def write_setpoint(self, power_w: float) -> None:
        """Command ``power_w`` (704 WSetEna=1, WSetMod=W, WSet). A non-zero setpoint is refused
        with :class:`ModuleFaultError` while the module reports a fault; 0 W always goes out."""
        if not math.isfinite(power_w):
            raise ValueError(f"setpoint must be a finite number of watts, got {power_w}")
        if power_w != 0.0:
            faults = await self.read_faults()
            if faults:
                raise ModuleFaultError(faults)
        sf = await self._wset_scale()
        await self._write_points(
            704,
            {
                "WSetEna": _WSET_ENABLED,
                "WSetMod": _WSET_MODE_WATTS,
                "WSet": unscale(self._sign * power_w, sf),
            },
        )

    async def set_energized(self, energized: bool) -> None:
        """703 ``ES``: 1 = may energize, 0 = stop energizing."""
        await self._write_points(703, {"ES": 1 if energized else 0})

    async def program_revert(self, *, timeout_s: float, revert_power_w: float = 0.0) -> None:
        """Arm 704 ``WSetRvrt``/``WSetEnaRvrt``/``WSetRvrtTms`` (timer in whole seconds, >= 1)."""
        if not (math.isfinite(timeout_s) and timeout_s > 0 and math.isfinite(revert_power_w)):
            raise ValueError(f"bad revert timer: timeout_s={timeout_s}, power={revert_power_w}")
        sf = await self._wset_scale()
        await self._write_points(704, {"WSetRvrt": unscale(self._sign * revert_power_w, sf)})
        await self._write_points(
            704, {"WSetEnaRvrt": _WSET_ENABLED, "WSetRvrtTms": max(1, round(timeout_s))}
        )

    async def read_revert_remaining_s(self) -> float | None:
        v = await self.read_points(704, ("WSetRvrtRem",))
        return None if v["WSetRvrtRem"] is None else float(v["WSetRvrtRem"])


def _number(value: float | int | str | None, what: str) -> float:
    if value is None or isinstance(value, str):
        raise PowerModuleError(f"{what}: point not implemented by the module")
    return float(value)


def _opt_int(value: float | int | str | None) -> int | None:
    return value if isinstance(value, int) else None


if TYPE_CHECKING:  # structural conformance to the control loop's port, checked by mypy
    _stage: type[PowerStage] = SunSpecPowerModule
