"""Per-channel sensor calibration: the file format, the least-squares fit, the atomic write.

File (JSON)::

    {
      "schema": 1,
      "updated_at": "2026-11-21T10:00:00+00:00",
      "channels": {
        "ch0": {"offset_w": -12.5, "gain": 1.0031, "calibrated_at": "...",
                "points": 4, "max_residual_w": 0.8,
                "previous": {"offset_w": 0.0, "gain": 1.0, "calibrated_at": null}}
      }
    }

Calibrated power = ``gain * raw_w + offset_w``. A missing file or channel means identity.
Each write also copies the file it replaces to ``<name>.bak``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from v2g_gateway.hw.errors import CalibrationError

__all__ = [
    "CalibrationFit",
    "ChannelCalibration",
    "fit_calibration",
    "load_calibration",
    "save_calibration",
]

SCHEMA = 1


@dataclass(frozen=True, slots=True)
class ChannelCalibration:
    """``power_w = gain * raw_w + offset_w``."""

    offset_w: float = 0.0
    gain: float = 1.0
    calibrated_at: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.offset_w) and math.isfinite(self.gain)) or self.gain <= 0:
            raise CalibrationError(
                f"unusable calibration: gain {self.gain}, offset {self.offset_w}"
            )

    def apply(self, raw_w: float) -> float:
        return self.gain * raw_w + self.offset_w


@dataclass(frozen=True, slots=True)
class CalibrationFit:
    """A least-squares fit of reference = gain * raw + offset, with its residuals (W)."""

    offset_w: float
    gain: float
    residuals_w: tuple[float, ...]

    @property
    def max_residual_w(self) -> float:
        return max(abs(r) for r in self.residuals_w)


def fit_calibration(raw_w: Sequence[float], reference_w: Sequence[float]) -> CalibrationFit:
    """Ordinary least squares over two or more distinct operating points."""
    n = len(raw_w)
    if n != len(reference_w) or n < 2:
        raise CalibrationError("need at least two (reading, reference) pairs")
    mean_x, mean_y = sum(raw_w) / n, sum(reference_w) / n
    sxx = sum((x - mean_x) ** 2 for x in raw_w)
    if sxx < 1e-9 * max(1.0, mean_x**2) or sxx == 0:
        raise CalibrationError("operating points must differ: all readings are the same")
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(raw_w, reference_w, strict=True))
    gain = sxy / sxx
    offset = mean_y - gain * mean_x
    residuals = tuple(y - (gain * x + offset) for x, y in zip(raw_w, reference_w, strict=True))
    return CalibrationFit(offset, gain, residuals)


def _read_document(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"schema": SCHEMA, "channels": {}}
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("channels"), dict):
        raise CalibrationError(f"{path}: expected an object with a 'channels' table")
    return data


def load_calibration(path: str | Path, channel: str) -> ChannelCalibration:
    """The channel's calibration, identity when the file or channel is absent."""
    entry = _read_document(Path(path))["channels"].get(channel)
    if entry is None:
        return ChannelCalibration()
    try:
        return ChannelCalibration(
            float(entry["offset_w"]), float(entry["gain"]), entry.get("calibrated_at")
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f"{path}: channel {channel}: {exc}") from None


def save_calibration(
    path: str | Path, channel: str, fit: CalibrationFit, *, now: datetime
) -> ChannelCalibration:
    """Write the channel's new values atomically (temp file, fsync, rename), keeping the
    previous values in the entry and the previous file as ``<name>.bak``."""
    target = Path(path)
    document = _read_document(target)
    old = document["channels"].get(channel) or {"offset_w": 0.0, "gain": 1.0}
    stamp = now.isoformat()
    document["schema"] = SCHEMA
    document["updated_at"] = stamp
    document["channels"][channel] = {
        "offset_w": fit.offset_w,
        "gain": fit.gain,
        "calibrated_at": stamp,
        "points": len(fit.residuals_w),
        "max_residual_w": fit.max_residual_w,
        "previous": {k: old.get(k) for k in ("offset_w", "gain", "calibrated_at")},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.copy2(target, target.with_name(target.name + ".bak"))
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ChannelCalibration(fit.offset_w, fit.gain, stamp)
