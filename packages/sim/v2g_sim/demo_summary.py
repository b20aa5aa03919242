"""The demo's closing summary: one table of rounded figures (pure: rows of text).

In the README's sign convention: energies and powers signed, positive = into the EVs,
negative = out of them (export). Figures are read from the report by the unit in their name
(``_wh``, ``_w``, ``_pct``, ``_share``, ``_s``), so a figure the report gains later is shown
rounded too instead of as a raw float.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SummaryRow", "figure", "report_rows"]

SummaryRow = tuple[str, str]

#: (name suffix, scale, unit, decimals): how a figure is shown, by the unit in its name.
_UNITS = (
    ("_wh", 1e-3, "kWh", 3),
    ("_w", 1e-3, "kW", 1),
    ("_pct", 1.0, "%", 1),
    ("_share", 100.0, "%", 1),
    ("_s", 1.0, "s", 1),
)


def figure(name: str, value: Any) -> str:
    """``value`` rounded for a reader, with the unit its ``name`` says."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    for suffix, scale, unit, decimals in _UNITS:
        if name.endswith(suffix):
            return f"{value * scale:,.{decimals}f} {unit}"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3g}"


def _label(name: str) -> str:
    for suffix, *_ in _UNITS:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ").replace("pct", "%")


def _section(title: str, values: Mapping[str, Any], *, indent: str = "") -> list[SummaryRow]:
    """A heading row, then one indented row per figure (a nested group as its own section)."""
    rows: list[SummaryRow] = [(indent + title, "")]
    for key, value in values.items():
        if isinstance(value, Mapping):
            rows += _section(_label(key), value, indent=indent + "  ")
        else:
            rows.append((f"{indent}  {_label(key)}", figure(key, value)))
    return rows


def report_rows(report: Mapping[str, Any], *, speed: float) -> list[SummaryRow]:
    """The report's figures as (what, value) rows; energies signed (negative = discharge)."""
    target, delivered = report["target_energy_wh"], report["delivered_energy_wh"]
    rows = [
        ("energy target", figure("target_energy_wh", target)),
        ("energy delivered", f"{figure('x_wh', delivered)} ({report['energy_source']})"),
        ("energy error (+ = over)", figure("x_pct", report["energy_error_pct"])),
        (
            f"uncompressed (x {speed:g})",
            f"{figure('x_wh', delivered * speed)} of {figure('x_wh', target * speed)}",
        ),
    ]
    tracking = report.get("tracking")
    if isinstance(tracking, Mapping):
        rows += _section("tracking", tracking)
    attribution = report.get("attribution")
    if isinstance(attribution, Mapping):
        rows += _section("shortfall, by cause (+ = under-delivered)", attribution)
    return rows
