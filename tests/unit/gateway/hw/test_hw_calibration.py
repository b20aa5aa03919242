"""Least-squares calibration fit and the calibration file (atomic write, backup, previous)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from v2g_gateway.hw.errors import CalibrationError
from v2g_gateway.hw.power_sensor import fit_calibration, load_calibration, save_calibration

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_fit_recovers_gain_and_offset_exactly_from_consistent_points() -> None:
    raw = [-7000.0, -2000.0, 0.0, 3000.0, 7000.0]
    ref = [0.98 * x - 12.5 for x in raw]
    fit = fit_calibration(raw, ref)
    assert fit.gain == pytest.approx(0.98)
    assert fit.offset_w == pytest.approx(-12.5)
    assert fit.max_residual_w < 1e-9


def test_fit_shows_residuals_of_an_inconsistent_point() -> None:
    fit = fit_calibration([0.0, 3000.0, 6000.0], [0.0, 3000.0, 1000.0])
    assert fit.max_residual_w > 1000.0
    assert len(fit.residuals_w) == 3


@pytest.mark.parametrize(
    ("raw", "ref"), [([1.0], [1.0]), ([5.0, 5.0], [1.0, 2.0]), ([1.0, 2.0], [1.0])]
)
def test_fit_refuses_degenerate_input(raw: list[float], ref: list[float]) -> None:
    with pytest.raises(CalibrationError):
        fit_calibration(raw, ref)


def test_missing_file_or_channel_is_identity(tmp_path: Path) -> None:
    cal = load_calibration(tmp_path / "none.json", "ch0")
    assert (cal.gain, cal.offset_w) == (1.0, 0.0)


def test_save_is_atomic_keeps_previous_values_and_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    first = save_calibration(path, "ch0", fit_calibration([0.0, 1000.0], [5.0, 1015.0]), now=NOW)
    assert first.gain == pytest.approx(1.01)
    later = datetime(2026, 11, 22, tzinfo=UTC)
    save_calibration(path, "ch0", fit_calibration([0.0, 1000.0], [-2.0, 998.0]), now=later)
    doc = json.loads(path.read_text())
    entry = doc["channels"]["ch0"]
    assert entry["gain"] == pytest.approx(1.0)
    assert entry["offset_w"] == pytest.approx(-2.0)
    assert entry["calibrated_at"] == later.isoformat()
    assert entry["previous"]["gain"] == pytest.approx(1.01)
    assert entry["previous"]["calibrated_at"] == NOW.isoformat()
    backup = json.loads((tmp_path / "cal.json.bak").read_text())
    assert backup["channels"]["ch0"]["gain"] == pytest.approx(1.01)
    assert not list(tmp_path.glob("*.tmp"))
    assert load_calibration(path, "ch0").offset_w == pytest.approx(-2.0)


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match=r"cal\.json"):
        load_calibration(path, "ch0")
    path.write_text(json.dumps({"channels": {"ch0": {"gain": -1, "offset_w": 0}}}))
    with pytest.raises(CalibrationError, match="gain"):
        load_calibration(path, "ch0")
