"""Meter value parsing: units, phases, signs, ordering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vpp_core.fleet.errors import MeterValueError
from vpp_core.fleet.meter import parse_meter_values


def _entry(ts: str, *samples: dict[str, object]) -> dict[str, object]:
    return {"timestamp": ts, "sampled_value": list(samples)}


def test_units_multipliers_and_default_measurand() -> None:
    [r] = parse_meter_values(
        [
            _entry(
                "2026-01-01T00:00:10Z",
                {"value": 1.5},  # default measurand: Energy.Active.Import.Register, Wh
                {
                    "value": 2.5,
                    "measurand": "Energy.Active.Export.Register",
                    "unit_of_measure": {"unit": "kWh"},
                },
                {
                    "value": -7,
                    "measurand": "Power.Active.Import",
                    "unit_of_measure": {"unit": "W", "multiplier": 3},
                },
                {"value": 55.5, "measurand": "SoC", "location": "EV"},
            )
        ]
    )
    assert r.timestamp == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert r.energy_import_wh == 1.5
    assert r.energy_export_wh == 2500.0
    assert r.power_w == -7000.0
    assert r.soc_pct == 55.5


def test_phase_values_summed_only_without_a_total() -> None:
    phases = [
        {"value": 1000, "measurand": "Power.Active.Import", "phase": p} for p in ("L1", "L2", "L3")
    ]
    [summed] = parse_meter_values([_entry("2026-01-01T00:00:00Z", *phases)])
    assert summed.power_w == 3000.0
    total = {"value": 2900, "measurand": "Power.Active.Import"}
    [with_total] = parse_meter_values([_entry("2026-01-01T00:00:00Z", *phases, total)])
    assert with_total.power_w == 2900.0


def test_lone_export_power_is_negative() -> None:
    [r] = parse_meter_values(
        [_entry("2026-01-01T00:00:00+01:00", {"value": 4000, "measurand": "Power.Active.Export"})]
    )
    assert r.power_w == -4000.0
    assert r.energy_import_wh is None


def test_readings_sorted_oldest_first_and_inlet_ignored() -> None:
    readings = parse_meter_values(
        [
            _entry("2026-01-01T00:00:20Z", {"value": 20}),
            _entry("2026-01-01T00:00:10Z", {"value": 10}, {"value": 99, "location": "Inlet"}),
        ]
    )
    assert [r.energy_import_wh for r in readings] == [10.0, 20.0]


@pytest.mark.parametrize(
    "entry",
    [
        _entry("2026-01-01T00:00:00Z", {"value": "lots"}),
        _entry("yesterday", {"value": 1}),
        _entry("2026-01-01T00:00:00", {"value": 1}),  # no UTC offset
        {"sampled_value": [{"value": 1}]},
    ],
)
def test_unreadable_values_raise_typed_error(entry: dict[str, object]) -> None:
    with pytest.raises(MeterValueError):
        parse_meter_values([entry])
