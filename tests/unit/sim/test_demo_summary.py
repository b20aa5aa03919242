"""The demo's summary: a table of rounded figures, energies signed as the README says
(negative = out of the EVs), no raw dicts or 15-digit floats."""

from __future__ import annotations

import io
import re

import pytest

from v2g_sim.demo_summary import figure, report_rows
from v2g_sim.demo_view import DemoView

REPORT = {
    "target_energy_wh": -2222.2222222222226,
    "delivered_energy_wh": -2235.376193338412,
    "energy_source": "meter registers",
    "energy_error_pct": 0.5919286999283021,
    "tracking": {
        "samples": 45,
        "rmse_w": 4012.345678901234,
        "relative_rmse": 0.05015432098765432,
        "within_5pct_share": 0.8571428571428571,
        "time_to_90pct_s": 12.04999999,
        "performance": {"score": 0.912345678, "delay_s": 2.0000001},
    },
    "attribution": {"total_wh": -13.153971116189, "dropout_wh": 22.39872340000001},
}


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("delivered_energy_wh", -2235.376193338412, "-2.235 kWh"),
        ("max_abs_error_w", 8843.21, "8.8 kW"),
        ("energy_error_pct", 0.5919286999283021, "0.6 %"),
        ("within_5pct_share", 0.8571428571428571, "85.7 %"),
        ("time_to_90pct_s", 12.04999999, "12.0 s"),
        ("samples", 45, "45"),
        ("relative_rmse", 0.05015432098765432, "0.0502"),
        ("mode", "power", "power"),
    ],
)
def test_each_figure_is_rounded_with_the_unit_its_name_says(
    name: str, value: object, shown: str
) -> None:
    assert figure(name, value) == shown


def test_report_rows_keep_discharge_negative_and_no_long_floats() -> None:
    rows = dict(report_rows(REPORT, speed=10.0))
    assert rows["energy target"] == "-2.222 kWh"
    assert rows["energy delivered"] == "-2.235 kWh (meter registers)"
    assert rows["energy error (+ = over)"] == "0.6 %"
    assert rows["uncompressed (x 10)"] == "-22.354 kWh of -22.222 kWh"
    assert rows["  within 5%"] == "85.7 %"
    assert rows["  dropout"] == "0.022 kWh"
    assert rows["tracking"] == ""
    assert (rows["  performance"], rows["    score"], rows["    delay"]) == ("", "0.912", "2.0 s")
    for what, value in rows.items():
        assert "{" not in value, (what, value)
        assert not re.search(r"\.\d{5,}", value), (what, value)  # 15-digit floats once


def test_the_table_is_printed_with_every_row() -> None:
    out = io.StringIO()
    DemoView(out, rich=False).table("summary", report_rows(REPORT, speed=10.0))
    text = out.getvalue()
    assert "summary" in text
    assert "energy delivered" in text
    assert "-2.235 kWh (meter registers)" in text
