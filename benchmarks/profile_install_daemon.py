"""SetChargingProfiles into a real gateway daemon under load: does its event loop stall?

The daemon of the integration tests (v2g-sim's power module on a pty, the real control
process, the station on a foreign CSMS, the ``ocpp`` library's ChargePoint) charges at 3 kW;
then a TxProfile CentralSetpoint alternating 2.0 / 2.5 kW is installed every
``--install-every`` s for ``--duration`` s, with ``--io-load`` (a ``dd ... conv=fsync``
writer on the state directory's disk) and/or ``--cpu-load N`` (N busy processes), both
started and killed here. The station ticks every 0.5 s with a 2 s lease (its defaults).
Printed as JSON: the installs, the CSMS's answer time p50/max, the control loop's
``LEASE_EXPIRED`` count, and with ``--py-spy`` (py-spy installed, not a dependency) the
share of the supervisor's event-loop thread spent outside ``select`` and its top frames:

    .venv/bin/python benchmarks/profile_install_daemon.py --io-load --duration 20 --py-spy
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocpp.v21 import call as call21

from tests.doubles.foreign_csms import ForeignCsms
from tests.doubles.threaded import InThread
from tests.integration.gateway.daemon.daemon_harness import (
    RunningDaemon,
    daemon_starter,
    gateway_config,
    running_sim,
    wait_for,
)
from tests.integration.gateway.daemon.test_daemon_ocpp_reset import PASSWORD, station_section

_IDLE_FRAME = "EpollSelector.select"


def profile(tx_id: str, setpoint_w: float) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(seconds=1)
    return {
        "id": 50,
        "stack_level": 50,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": tx_id,
        "charging_schedule": [
            {
                "id": 50,
                "start_schedule": start.isoformat(),
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {"start_period": 0, "operation_mode": "CentralSetpoint", "setpoint": setpoint_w}
                ],
            }
        ],
    }


@contextlib.contextmanager
def machine_load(tmp: Path, *, io: bool, cpu: int) -> Iterator[None]:
    commands = [[sys.executable, "-c", "while True: pass"] for _ in range(cpu)]
    if io:
        target = tmp / "io-load"
        dd = f"while :; do dd if=/dev/zero of={target} bs=1M count=512 conv=fsync status=none; done"
        commands.append(["sh", "-c", dd])
    loaders = [subprocess.Popen(c, start_new_session=True) for c in commands]
    try:
        yield
    finally:
        for process in loaders:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        (tmp / "io-load").unlink(missing_ok=True)


@contextlib.contextmanager
def py_spy(pid: int, out: Path, duration_s: float, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--idle", "-r", "200", "-f", "raw", "-o", str(out)]
    process = subprocess.Popen(
        [*command, "-d", str(int(duration_s)), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.wait(timeout=duration_s + 30)


def loop_thread_profile(raw: Path) -> dict[str, Any]:
    """The event loop's thread (stacks through run_until_complete): busy share, top frames."""
    total, own = 0, collections.Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "run_until_complete" not in stack:
            continue
        total += int(count)
        own[stack.split(";")[-1]] += int(count)
    idle = sum(n for frame, n in own.items() if frame.startswith(_IDLE_FRAME))
    top = [(frame, n) for frame, n in own.most_common(8) if not frame.startswith(_IDLE_FRAME)]
    return {
        "samples": total,
        "busy_share": round((total - idle) / total, 3) if total else None,
        "top_own_frames": [{"frame": frame, "samples": n} for frame, n in top[:6]],
    }


def install_repeatedly(
    csms: InThread[ForeignCsms], tx_id: str, *, duration_s: float, every_s: float
) -> list[float]:
    answers: list[float] = []
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        setpoint = 2000.0 if len(answers) % 2 == 0 else 2500.0
        request = call21.SetChargingProfile(evse_id=1, charging_profile=profile(tx_id, setpoint))
        sent = time.monotonic()
        status = csms.run(lambda c, r=request: c.call(r)).status  # type: ignore[misc]
        answers.append(time.monotonic() - sent)
        assert status == "Accepted", status
        time.sleep(every_s)
    return answers


def charging_daemon(tmp: Path, start: Any, sim: Any, url: str) -> RunningDaemon:
    station = station_section(url, tmp / "state")
    station.update(control_tick_s=0.5, lease_valid_for_s=2.0)
    config = gateway_config(tmp, sim, local_lease={"enabled": False}, station=station)
    daemon: RunningDaemon = start(config)
    wait_for(lambda: sim.status()["setpoint_w"] == 3000.0, timeout_s=60.0, what="charging")
    return daemon


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    spy_out = tmp / "py-spy.txt"
    with (
        running_sim(tmp / "sim.sock") as sim,
        daemon_starter(tmp, sim) as start,
        InThread[ForeignCsms](lambda: ForeignCsms(passwords={"CS-0001": PASSWORD})) as csms,
    ):
        daemon = charging_daemon(tmp, start, sim, csms.double.url)
        tx_id = csms.double.calls("TransactionEvent")[0]["transactionInfo"]["transactionId"]
        load = os.getloadavg()[0]
        with (
            machine_load(tmp, io=args.io_load, cpu=args.cpu_load),
            py_spy(daemon.pid, spy_out, args.duration, args.py_spy),
        ):
            answers = install_repeatedly(
                csms, str(tx_id), duration_s=args.duration, every_s=args.install_every
            )
        log = daemon.log()
    result: dict[str, Any] = {
        "benchmark": "profile_install_daemon",
        "io_load": args.io_load,
        "cpu_load": args.cpu_load,
        "load_avg_1min_at_start": load,
        "installs": len(answers),
        "answer_s": {
            "p50": round(statistics.median(answers), 3),
            "max": round(max(answers), 3),
        },
        "lease_expired": log.count("LEASE_EXPIRED"),
    }
    if args.py_spy:
        result["supervisor_loop_thread"] = loop_thread_profile(spy_out)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--install-every", type=float, default=0.3, help="s between profiles")
    parser.add_argument("--io-load", action="store_true", help="a dd conv=fsync writer beside")
    parser.add_argument("--cpu-load", type=int, default=0, help="busy processes beside")
    parser.add_argument("--py-spy", action="store_true", help="profile the supervisor")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="profile-install-") as tmp:
        print(json.dumps(run(args, Path(tmp)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
