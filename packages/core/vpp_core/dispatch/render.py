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

SCHEMA = "vpp.dispatch.report/1"


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


def report_png(report: DispatchReport) -> bytes:
    """Target vs delivered power over time, energy totals in the title and legend."""
    scale, unit = (1e6, "MW") if abs(report.requested_w) >= 1e6 else (1e3, "kW")
    t = [(r.t_end - report.start).total_seconds() / 60.0 for r in report.intervals]
    fig = Figure(figsize=(9, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.step(
        t,
        [r.target_w / scale for r in report.intervals],
        where="pre",
        label=f"target ({report.target_energy_wh / 1e3:.1f} kWh)",
    )
    ax.step(
        t,
        [r.delivered_w / scale for r in report.intervals],
        where="pre",
        label=f"delivered ({report.delivered_energy_wh / 1e3:.1f} kWh, {report.energy_source})",
    )
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xlabel("time since start (min)")
    ax.set_ylabel(f"power ({unit}, negative = discharge)")
    ax.set_title(
        f"dispatch {report.dispatch_id} ({report.status}): energy error "
        f"{report.energy_error_pct:+.2f} %, {report.tracking.within_5pct_share:.0%} within ±5 %"
    )
    ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
