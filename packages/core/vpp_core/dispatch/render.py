"""Render a DispatchReport as JSON, CSV or a PNG plot (matplotlib, Agg backend, no pyplot)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vpp_core.dispatch.report import DispatchReport

__all__ = ["report_csv", "report_dict", "report_json", "report_png"]

#: 2: tracking contract, headline figures with their own sample counts, PJM score, sessions
#: that ended before the clear listed apart from ``uncleared``, re-plans.
SCHEMA = "vpp.dispatch.report/2"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "_asdict"):  # NamedTuple (SessionKey)
        return _plain(value._asdict())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def report_dict(report: DispatchReport) -> dict[str, Any]:
    """JSON-ready dict with a ``schema`` version field."""
    data = _plain(asdict(report))
    data["schema"] = SCHEMA
    return {"schema": SCHEMA, **{k: v for k, v in data.items() if k != "schema"}}


def report_json(report: DispatchReport) -> bytes:
    return json.dumps(report_dict(report), separators=(",", ":"), allow_nan=False).encode()


CSV_COLUMNS = (
    "t_start",
    "t_end",
    "target_w",
    "committed_w",
    "delivered_w",
    "planned_w",
    "dropout_w",
    "available_w",
    "deployable_w",
)


def report_csv(report: DispatchReport) -> bytes:
    """One row per control interval."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.intervals:
        row = [_plain(getattr(r, c)) for c in CSV_COLUMNS]
        writer.writerow([f"{v:.3f}" if isinstance(v, float) else v for v in row])
    return out.getvalue().encode()


def _headline(report: DispatchReport) -> str:
    t = report.tracking
    t90 = f"{t.time_to_90pct_s:.0f} s" if t.time_to_90pct_s is not None else "never"
    return (
        f"energy {report.energy_error_pct:+.2f} % ({report.energy_source}), 90 % at {t90}, "
        f"within ±5 %: {t.within_5pct_share:.0%} of {t.samples} "
        f"({t.within_5pct_after_ramp_in_share:.0%} of {t.samples_after_ramp_in} after "
        f"{t.ramp_in_s:g} s), max overshoot {t.max_overshoot_pct:.1f} %"
        + (f", PJM score {report.performance.composite:.2f}" if report.performance else "")
    )


def _mark_events(ax: Any, report: DispatchReport, minutes: Any) -> None:
    """Drop-outs (red: when the session ended, else when the core saw it go) and re-plans
    (grey) as vertical lines, each labelled once."""
    drops = sorted(
        {when for s in report.sessions if (when := s.ended_at or s.dropped_at) is not None}
    )
    for i, when in enumerate(drops):
        ax.axvline(minutes(when), color="tab:red", linestyle=":", linewidth=1.0,
                   label=f"drop-out ({len(drops)})" if i == 0 else None)  # fmt: skip
    for i, when in enumerate(report.replans):
        ax.axvline(minutes(when), color="grey", linestyle="--", linewidth=0.8,
                   label=f"re-plan ({len(report.replans)})" if i == 0 else None)  # fmt: skip


def report_png(report: DispatchReport, *, speed: float = 1.0) -> bytes:
    """Target vs delivered power over the whole window (from its start), drop-outs and
    re-plans marked, headline figures in the title. ``speed`` > 1: the run's time was
    compressed that much (a demo); the plot says so, since its minutes and energies are
    the compressed ones."""
    scale, unit = (1e6, "MW") if abs(report.requested_w) >= 1e6 else (1e3, "kW")

    def minutes(when: datetime) -> float:
        return (when - report.start).total_seconds() / 60.0

    edges = [minutes(r.t_start) for r in report.intervals]
    edges += [minutes(report.end)] if report.intervals else []
    fig = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rows = report.intervals
    for label, values in (
        (f"target ({report.target_energy_wh / 1e3:.2f} kWh)", [r.target_w for r in rows]),
        (f"delivered ({report.delivered_energy_wh / 1e3:.2f} kWh, {report.energy_source})",
         [r.delivered_w for r in rows]),
        ("commanded (setpoints in force)", [r.planned_w for r in rows]),
    ):  # fmt: skip
        if values:
            ax.stairs([v / scale for v in values], edges, label=label, baseline=None)
    _mark_events(ax, report, minutes)
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xlim(left=0.0)
    compressed = f", time compressed {speed:g}x" if speed > 1 else ""
    ax.set_xlabel(f"time since start (min{compressed})")
    ax.set_ylabel(f"power ({unit}, negative = discharge)")
    ax.set_title(
        f"dispatch {report.dispatch_id} ({report.status}, {report.tracking_mode} tracking"
        f"{compressed})\n{_headline(report)}",
        fontsize=9,
    )
    if speed > 1:
        fig.text(0.01, 0.01, f"--speed {speed:g}: minutes and energies are the compressed "
                 "run's (what actually flowed)", fontsize=8)  # fmt: skip
    if report.intervals:
        ax.legend(loc="best", fontsize=8)
    ax.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
