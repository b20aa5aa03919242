"""scripts/calibrate-sensors against a running simulator with a known sensor error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "calibrate-sensors"
GAIN_ERROR, OFFSET_ERROR_W = 0.031, -42.0


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimulatorRuntime]:
    options = SimulatorOptions(
        baudrate=115200,
        time_scale=1.0,
        plug_in=True,
        socket_path=tmp_path / "sim.sock",
        sensor_gain_error=GAIN_ERROR,
        sensor_offset_error_w=OFFSET_ERROR_W,
    )
    async with SimulatorRuntime(options) as runtime:
        yield runtime


async def _run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _points(pairs: list[tuple[float, float]]) -> list[str]:
    return [f"--point={setpoint}:{reference}" for setpoint, reference in pairs]


async def test_recovers_injected_offset_and_gain_within_half_a_percent(
    sim: SimulatorRuntime, tmp_path: Path
) -> None:
    cal = tmp_path / "cal.json"
    socket = str(sim.options.socket_path)
    # the simulated analyzer: the module settles exactly on the setpoint
    points = _points([(-7000, -7000), (-2500, -2500), (0, 0), (3000, 3000), (7000, 7000)])
    code, out = await _run(
        "--sim-socket", socket, "--calibration-file", str(cal), "--samples", "3", *points
    )
    assert code == 0, out
    assert "residual" in out
    entry = json.loads(cal.read_text())["channels"]["ch0"]
    expected_gain = 1 / (1 + GAIN_ERROR)
    expected_offset = -OFFSET_ERROR_W / (1 + GAIN_ERROR)
    assert entry["gain"] == pytest.approx(expected_gain, rel=0.005)
    assert entry["offset_w"] == pytest.approx(expected_offset, rel=0.005)
    assert entry["calibrated_at"]

    # a second run keeps the previous values and a backup of the old file
    code, out = await _run(
        "--sim-socket", socket, "--calibration-file", str(cal), "--samples", "1", *points[:2]
    )
    assert code == 0, out
    entry2 = json.loads(cal.read_text())["channels"]["ch0"]
    assert entry2["previous"]["gain"] == entry["gain"]
    backup = json.loads((tmp_path / "cal.json.bak").read_text())
    assert backup["channels"]["ch0"]["offset_w"] == entry["offset_w"]


async def test_rejects_an_inconsistent_set_of_reference_points(
    sim: SimulatorRuntime, tmp_path: Path
) -> None:
    cal = tmp_path / "cal.json"
    cal.write_text('{"channels": {"ch0": {"offset_w": 1.5, "gain": 1.01}}}')
    before = cal.read_bytes()
    points = _points([(0, 0), (3000, 3000), (6000, 1000)])  # third reference mistyped
    code, out = await _run(
        "--sim-socket",
        str(sim.options.socket_path),
        "--calibration-file",
        str(cal),
        "--samples",
        "2",
        *points,
    )
    assert code == 3, out
    assert "REFUSED" in out
    assert cal.read_bytes() == before
    assert not (tmp_path / "cal.json.bak").exists()


async def test_interactive_technician_flow(sim: SimulatorRuntime, tmp_path: Path) -> None:
    """Prompts: the technician sets operating points (here via the sim) and types readings."""
    cal = tmp_path / "cal.json"
    charger = sim.chargers[1]
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "--sim-socket",
        str(sim.options.socket_path),
        "--calibration-file",
        str(cal),
        "--samples",
        "2",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    for setpoint in (-6000.0, 4000.0):
        await asyncio.wait_for(proc.stdout.readuntil(b"reference W: "), timeout=30)
        charger.model.command_setpoint(setpoint)
        charger.model.step(30.0)  # settle (sim clock injected by the test)
        proc.stdin.write(f"{charger.model.power_w:.3f}\n".encode())
        await proc.stdin.drain()
    await asyncio.wait_for(proc.stdout.readuntil(b"reference W: "), timeout=30)
    proc.stdin.write(b"\n")
    await proc.stdin.drain()
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, out.decode()
    entry = json.loads(cal.read_text())["channels"]["ch0"]
    assert entry["gain"] == pytest.approx(1 / (1 + GAIN_ERROR), rel=0.005)
