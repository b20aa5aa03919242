"""``v2g-sim serve`` as a process: prints its tty, serves 50 modules, obeys the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from v2g_gateway.hw.config import PowerModuleSection
from v2g_gateway.hw.power_module import open_power_module
from v2g_sim.cli import main as sim_cli

pytestmark = pytest.mark.integration

V2G_SIM = str(Path(sys.executable).parent / "v2g-sim")


async def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = await asyncio.to_thread(sim_cli, list(args))
    out = capsys.readouterr().out
    assert code == 0, out
    return dict(json.loads(out))


async def test_serve_process_with_50_modules_and_cli_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = str(tmp_path / "sim.sock")
    proc = await asyncio.create_subprocess_exec(
        V2G_SIM,
        "serve",
        "--chargers",
        "50",
        "--baudrate",
        "115200",
        "--socket",
        sock,
        "--time-scale",
        "10",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        assert line.startswith("tty: ")
        tty = line.split()[1]
        await asyncio.wait_for(proc.stdout.readline(), timeout=5)  # device ids / socket line
        assert Path(tty).is_char_device()  # noqa: ASYNC240 - a stat, instant

        plugged = await _cli(
            capsys,
            "plug-in",
            "--socket",
            sock,
            "--device-id",
            "50",
            "--soc-pct",
            "65",
            "--ev-id",
            "EV-50",
        )
        assert plugged["ev_id"] == "EV-50"
        module, client = open_power_module(
            PowerModuleSection(
                port=tty, baudrate=115200, parity="N", device_id=50, timeout_s=0.3, retries=1
            )
        )
        try:
            chain = await module.discover()
            assert 713 in chain.addresses
            assert (await module.read_identity()).serial_number == "SIM0050"
            measured = await module.read_measurement()
            assert measured.ev_connected
            needs = await _cli(capsys, "ev-needs", "--socket", sock, "--device-id", "50")
            assert needs["needs"]["ev_id"] == "EV-50"  # type: ignore[index]
            assert measured.soc_pct == pytest.approx(65.0, abs=0.1)

            await _cli(
                capsys, "fault", "--socket", sock, "--device-id", "50", "--kind", "ground_fault"
            )
            assert (await module.read_measurement()).faults == frozenset({"GROUND_FAULT"})
            await _cli(capsys, "clear", "--socket", sock, "--device-id", "50")
            await _cli(capsys, "plug-out", "--socket", sock, "--device-id", "50")
            after = await module.read_measurement()
            assert not after.ev_connected
            assert after.faults == frozenset()
            status = await _cli(capsys, "status", "--socket", sock)
            assert len(status["chargers"]) == 50  # type: ignore[arg-type]
        finally:
            client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=10)
    assert proc.returncode == 0
    assert not Path(sock).exists()  # noqa: ASYNC240


def test_cli_reports_an_absent_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sim_cli(["status", "--socket", str(tmp_path / "none.sock")]) == 1
    assert "cannot reach" in capsys.readouterr().err
