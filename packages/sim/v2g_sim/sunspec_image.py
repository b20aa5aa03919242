"""The simulated module's SunSpec register image: rendered from the model, written back to it.

Uses the same register map data and codec as the driver, so a map change is one file;
conformance to the SunSpec models themselves is checked independently with pysunspec2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from v2g_gateway.hw.power_module.codec import (
    ALARM_CODES,
    SUNS_MARKER,
    decode_point,
    encode_point,
    unscale,
)
from v2g_gateway.hw.power_module.register_map import ModelSpec, RegisterMap, standard_register_map
from v2g_sim.module import PowerModuleModel

__all__ = ["MODEL_ORDER", "ScaleFactors", "SunSpecImage", "WriteRejected"]

MODEL_ORDER = (1, 701, 702, 703, 704, 713)
_FAULT_BITS = {code: bit for bit, code in ALARM_CODES.items()}
_KIND_TO_BIT = {
    "ground_fault": _FAULT_BITS["GROUND_FAULT"],
    "over_temp": _FAULT_BITS["OVER_TEMP"],
    "dc_over_voltage": _FAULT_BITS["DC_OVER_VOLTAGE"],
    "ac_over_voltage": _FAULT_BITS["AC_OVER_VOLTAGE"],
    "ac_under_voltage": _FAULT_BITS["AC_UNDER_VOLTAGE"],
    "frequency_excursion": 8,  # SunSpec OVER_FREQUENCY
}
_WRITABLE = {
    1: {"DA"},
    703: {"ES"},
    704: {
        "WSetEna",
        "WSetMod",
        "WSet",
        "WSetRvrt",
        "WSetEnaRvrt",
        "WSetRvrtTms",
        "WRmp",
        "WRmpRef",
    },
}
_INV_ST_OFF, _INV_ST_RUNNING, _INV_ST_FAULT, _INV_ST_STANDBY = 0, 3, 6, 7


class WriteRejected(Exception):
    """A write the module refuses (read-only or partial point): Modbus exception 02."""


@dataclass(frozen=True, slots=True)
class ScaleFactors:
    """The scale factors the simulated module publishes (signed powers of ten)."""

    w_sf: int = 0
    v_sf: int = -1
    hz_sf: int = -2
    totwh_sf: int = -1
    tmp_sf: int = -1
    rating_w_sf: int = 0
    wset_sf: int = 0
    wh_sf: int = 1
    pct_sf: int = -1


@dataclass(slots=True)
class SunSpecImage:
    """Register image of one module at ``base_address`` (40000 by default)."""

    model: PowerModuleModel
    register_map: RegisterMap = field(default_factory=standard_register_map)
    sf: ScaleFactors = field(default_factory=ScaleFactors)
    base_address: int = 40000
    identity: tuple[str, str, str, str] = ("V2G-SIM", "BIDI-11", "1.0.0", "SIM0001")
    addresses: dict[int, int] = field(init=False)
    size: int = field(init=False)
    _held: dict[tuple[int, str], int | str | None] = field(init=False)

    def __post_init__(self) -> None:
        address = self.base_address + 2
        self.addresses = {}
        for model_id in MODEL_ORDER:
            self.addresses[model_id] = address
            address += 2 + self.register_map.model(model_id).length
        self.size = address + 2 - self.base_address
        self._held = {
            (704, "WSetEna"): 0,
            (704, "WSetMod"): 1,
            (704, "WSet"): 0,
            (704, "WSetRvrt"): 0,
            (704, "WSetEnaRvrt"): 0,
            (704, "WSetRvrtTms"): 0,
            (704, "WRmp"): None,
            (704, "WRmpRef"): None,
            (703, "ES"): 1,
            (1, "DA"): 1,
        }

    @property
    def _sign(self) -> float:
        return -1.0 if self.register_map.power_sign == "injection_positive" else 1.0

    # --- reading --------------------------------------------------------------------------
    def render(self) -> list[int]:
        """The whole image (marker, models, end marker) as register words."""
        words = [0] * self.size
        words[0:2] = SUNS_MARKER
        for model_id in MODEL_ORDER:
            spec = self.register_map.model(model_id)
            start = self.addresses[model_id] - self.base_address
            words[start : start + 2] = [model_id, spec.length]
            for name, raw in self._points(model_id).items():
                point = spec.point(name)
                words[start + point.offset : start + point.offset + point.size] = encode_point(
                    raw, point
                )
        words[-2:] = [0xFFFF, 0]
        return words

    def _points(self, model_id: int) -> dict[str, int | str | None]:
        held: dict[str, int | str | None] = {
            name: v for (mid, name), v in self._held.items() if mid == model_id
        }
        if model_id == 1:
            mn, md, vr, sn = self.identity
            return {"Mn": mn, "Md": md, "Vr": vr, "SN": sn, **held}
        if model_id == 701:
            return self._points_701()
        if model_id == 702:
            s, sf = self.model.spec, self.sf.rating_w_sf
            return {
                "WMaxRtg": unscale(max(s.rated_charge_w, s.rated_discharge_w), sf),
                "WChaRteMaxRtg": unscale(s.rated_charge_w, sf),
                "WDisChaRteMaxRtg": unscale(s.rated_discharge_w, sf),
                "W_SF": sf,
            }
        if model_id == 704:
            rem = self.model.revert_remaining_s
            return {
                **held,
                "WSetRvrtRem": None if rem is None else math.ceil(rem),
                "WSet_SF": self.sf.wset_sf,
            }
        if model_id == 713:
            return self._points_713()
        return held

    def _points_701(self) -> dict[str, int | str | None]:
        m, sf = self.model, self.sf
        alarm = 0
        for kind in m.faults:
            if kind in _KIND_TO_BIT:
                alarm |= 1 << _KIND_TO_BIT[kind]
        if m.tripped:
            inv_st = _INV_ST_FAULT
        elif not m.energized:
            inv_st = _INV_ST_OFF
        else:
            inv_st = _INV_ST_RUNNING if abs(m.power_w) >= 1.0 else _INV_ST_STANDBY
        injected, absorbed = m.energy_injected_wh, m.energy_absorbed_wh
        return {
            "InvSt": inv_st,
            "ConnSt": int(m.energized and m.contactor_closed and not m.tripped),
            "Alrm": alarm,
            "W": unscale(self._sign * m.power_w, sf.w_sf),
            "LNV": unscale(m.grid_voltage_v, sf.v_sf),
            "VL1": unscale(m.grid_voltage_v, sf.v_sf),
            "Hz": unscale(m.grid_freq_hz, sf.hz_sf),
            "TotWhInj": math.floor(injected / 10.0**sf.totwh_sf),
            "TotWhAbs": math.floor(absorbed / 10.0**sf.totwh_sf),
            "TmpCab": unscale(m.temperature_c, sf.tmp_sf),
            "V_SF": sf.v_sf,
            "Hz_SF": sf.hz_sf,
            "W_SF": sf.w_sf,
            "TotWh_SF": sf.totwh_sf,
            "Tmp_SF": sf.tmp_sf,
        }

    def _points_713(self) -> dict[str, int | str | None]:
        m, sf = self.model, self.sf
        if m.ev is None or m.soc_pct is None:
            return {
                "WHRtg": None,
                "WHAvail": None,
                "SoC": None,
                "SoH": None,
                "Sta": None,
                "WH_SF": sf.wh_sf,
                "Pct_SF": sf.pct_sf,
            }
        cap = m.ev.battery_capacity_wh
        return {
            "WHRtg": unscale(cap, sf.wh_sf),
            "WHAvail": unscale(cap * m.soc_pct / 100, sf.wh_sf),
            "SoC": unscale(m.soc_pct, sf.pct_sf),
            "SoH": unscale(100.0, sf.pct_sf),
            "Sta": 2 if m.tripped else 0,
            "WH_SF": sf.wh_sf,
            "Pct_SF": sf.pct_sf,
        }

    # --- writing --------------------------------------------------------------------------
    def apply_write(self, address: int, values: Sequence[int]) -> None:
        """Apply a function-16/6 write; :class:`WriteRejected` leaves the model unchanged."""
        written: dict[tuple[int, str], int | str | None] = {}
        end = address + len(values)
        for model_id, model_address in self.addresses.items():
            spec = self.register_map.model(model_id)
            if end <= model_address or address >= model_address + 2 + spec.length:
                continue
            written.update(self._covered_points(model_id, spec, address, values))
        if not written or len(_covered_words(written, self)) != len(values):
            raise WriteRejected(f"write @{address}+{len(values)} touches read-only registers")
        self._held.update(written)
        self._apply_semantics(set(written))

    def _covered_points(
        self, model_id: int, spec: ModelSpec, address: int, values: Sequence[int]
    ) -> dict[tuple[int, str], int | str | None]:
        base = self.addresses[model_id]
        found: dict[tuple[int, str], int | str | None] = {}
        for name in _WRITABLE.get(model_id, set()):
            point = spec.point(name)
            start = base + point.offset - address
            if start >= 0 and start + point.size <= len(values):
                found[(model_id, name)] = decode_point(values[start : start + point.size], point)
        return found

    def _scaled(self, name: str) -> float:
        raw = self._held[(704, name)]
        return 0.0 if not isinstance(raw, int) else self._sign * raw * 10.0**self.sf.wset_sf

    def _apply_semantics(self, keys: set[tuple[int, str]]) -> None:
        m = self.model
        if (703, "ES") in keys:
            m.energized = self._held[(703, "ES")] == 1
        if keys & {(704, "WSet"), (704, "WSetEna"), (704, "WSetMod")}:
            enabled = self._held[(704, "WSetEna")] == 1 and self._held[(704, "WSetMod")] == 1
            m.command_setpoint(self._scaled("WSet") if enabled else 0.0)
        if keys & {(704, "WSetRvrt"), (704, "WSetEnaRvrt"), (704, "WSetRvrtTms")}:
            tms = self._held[(704, "WSetRvrtTms")]
            m.program_revert(
                enabled=self._held[(704, "WSetEnaRvrt")] == 1 and isinstance(tms, int) and tms > 0,
                timeout_s=float(tms) if isinstance(tms, int) else 0.0,
                revert_power_w=self._scaled("WSetRvrt"),
            )


def _covered_words(
    written: dict[tuple[int, str], int | str | None], image: SunSpecImage
) -> set[int]:
    words: set[int] = set()
    for model_id, name in written:
        point = image.register_map.model(model_id).point(name)
        start = image.addresses[model_id] + point.offset
        words.update(range(start, start + point.size))
    return words
