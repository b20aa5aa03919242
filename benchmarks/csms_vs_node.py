"""Our CSMS side by side with the best Node OCPP 2.1 stack (npm ``ocpp-ws-io``), one machine.

Each server in turn runs pinned to CPU 0; one Node load generator (``node_csms/loadgen.js``,
raw ``ws`` clients) drives it from CPU 1, with the same frames (``csms_load._frame``:
TransactionEvent Updated with meter values), the same security profile 1 (Basic auth, plain
ws) and the same durations. Per server:

1. a self-check: one valid frame must be answered CALLRESULT and one invalid frame (``seqNo``
   as text) CALLERROR; the script stops if either server accepts the invalid frame, so
   neither can be measured with its schema validation off;
2. closed loop: ``--connections`` back-to-back (each sends its next CALL when the previous
   answer arrived): validated msg/s, server CPU µs per message (user + sys of the server
   process over the measured window), p50/p99 latency, errors (a CALLERROR is a frame that
   failed validation: must be 0);
3. a fresh server holding ``--idle-connections`` open-loop connections (one TransactionEvent
   every ``--idle-interval`` s each): its RSS at the end of the hold, and the peak.

What each server does per message: ours (a real ``vpp-core run``, the configuration
``csms_load.py`` starts it with: SQLite fleet, write-behind every 0.5 s) validates the CALL
and its answer against the OCA schemas, updates the station's live fleet state and queues the
row for the database; theirs (ocpp-ws-io 2.3.2, ``strictMode: true``) validates the CALL and
its answer with ajv and updates an in-memory station record, and writes no database.

    .venv/bin/python benchmarks/csms_vs_node.py
    .venv/bin/python benchmarks/csms_vs_node.py --duration 30 --idle-connections 0
    .venv/bin/python benchmarks/csms_vs_node.py --only ours --core-src ../other-checkout

Needs ``node`` (>= 20) and ``npm``; runs ``npm ci`` in ``benchmarks/node_csms`` when its
``node_modules`` is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.csms_load import (  # noqa: E402
    PASSWORD,
    _frame,
    _free_port,
    _provision,
    _raise_fd_limit,
    _start_core,
    _wait_listening,
    _write_config,
    drain_stderr,
    option_parser,
)

NODE_DIR = ROOT / "benchmarks" / "node_csms"
SERVER_CPU, GENERATOR_CPU = 0, 1
#: The OCPP-J error codes a schema violation is answered with (FormatViolation is 2.x's
#: spelling of 1.6's FormationViolation).
VALIDATION_ERRORS = {
    "FormatViolation",
    "FormationViolation",
    "TypeConstraintViolation",
    "OccurrenceConstraintViolation",
    "PropertyConstraintViolation",
}
PER_MESSAGE = {
    "ours": "vpp-core run (SQLite fleet, default runtime config): OCA-schema validation of the "
    "CALL and its answer, live fleet state updated, row queued for the write-behind store",
    "theirs": "ocpp-ws-io 2.3.2, strictMode (ajv) on the CALL and its answer, an in-memory "
    "station record updated; no database",
}


class SelfCheckFailed(RuntimeError):
    """A server accepted an invalid frame, refused a valid one, or refused the connection."""


@dataclass(frozen=True)
class Running:
    """A server under test: where the stations connect, its process to sample, and what it
    wrote to stderr (WARNING and up for ours)."""

    url: str
    process: psutil.Process
    stderr: list[str] = field(default_factory=list)


def _pinned(cpu: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child and every thread it starts run on ``cpu`` only."""
    return lambda: os.sched_setaffinity(0, {cpu})


def _ensure_node_modules() -> str:
    """Install the Node side if missing; the node version."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("csms_vs_node needs node (>= 20) and npm on PATH")
    if not (NODE_DIR / "node_modules" / "ocpp-ws-io").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return version.stdout.strip()


def _check_same_frames() -> None:
    """The generator's TransactionEvent must be csms_load's, byte for byte."""
    sample = (7, 3, "tx-1", "2026-01-01T00:00:00.000Z", 1007)
    node = subprocess.run(
        ["node", "loadgen.js", "--print-frame", *map(str, sample)],
        cwd=NODE_DIR,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if node != _frame(*sample):
        raise SystemExit(
            f"loadgen.js builds another frame than csms_load:\n{node}\n{_frame(*sample)}"
        )


# -- the servers ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _ours(args: argparse.Namespace, stations: int) -> AsyncIterator[Running]:
    with tempfile.TemporaryDirectory(prefix="csms-vs-node-") as tmp:
        work = Path(tmp)
        config_args = option_parser().parse_args([])
        config_args.core_src = args.core_src
        port, metrics_port = _free_port(), _free_port()
        config = _write_config(work, config_args, port, metrics_port)
        url = f"sqlite:///{work / 'fleet.db'}"
        await _provision(url, stations, profile=1, old_scheme=args.core_src is not None)
        core = _start_core(config, args.core_src)
        try:
            await _wait_listening(port, core)
            process = psutil.Process(core.pid)
            yield Running(f"ws://127.0.0.1:{port}/ocpp", process, drain_stderr(core))
        finally:
            _stop(core)


@contextlib.asynccontextmanager
async def _theirs(args: argparse.Namespace, stations: int) -> AsyncIterator[Running]:
    command = ["server.js", "--port", "0", "--stations", str(stations), "--password", PASSWORD]
    server = await asyncio.create_subprocess_exec(
        "node",
        *command,
        *(["--no-strict"] if args.theirs_strict_off else []),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_pinned(SERVER_CPU),
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), 60)
        if not line.startswith(b"LISTENING "):
            raise RuntimeError(f"server.js did not start: {line!r}")
        port = int(line.split()[1])
        yield Running(f"ws://127.0.0.1:{port}/ocpp", psutil.Process(server.pid))
    finally:
        server.terminate()
        try:
            await asyncio.wait_for(server.wait(), 30)
        except TimeoutError:
            server.kill()
            await server.wait()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


SERVERS = {"ours": _ours, "theirs": _theirs}


# -- the generator -------------------------------------------------------------------------


async def _generator(url: str, *options: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node",
        "loadgen.js",
        "--url",
        url,
        "--password",
        PASSWORD,
        *options,
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_pinned(GENERATOR_CPU),
    )


async def _self_check(name: str, server: Running) -> dict[str, Any]:
    generator = await _generator(server.url, "--self-check")
    out, _ = await asyncio.wait_for(generator.communicate(), 60)
    answers: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    valid: list[Any] = answers.get("valid_answer") or [None]
    invalid: list[Any] = answers.get("invalid_answer") or [None, None, None]
    if valid[0] != 3:
        raise SelfCheckFailed(f"{name}: the valid frame was not answered CALLRESULT: {answers}")
    if invalid[0] != 4 or invalid[2] not in VALIDATION_ERRORS:
        raise SelfCheckFailed(
            f"{name} accepted a frame that fails the OCPP 2.1 schema (is its validation on?): "
            f"{invalid}"
        )
    return {"valid": valid[0], "invalid": invalid[2]}


def _cpu_s(process: psutil.Process) -> float:
    """User + system seconds of the server and any children, all threads included."""
    total = 0.0
    for p in (process, *process.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = p.cpu_times()
            total += times.user + times.system
    return total


class _Window:
    """The server's CPU time and RSS over the generator's measured window."""

    def __init__(self, process: psutil.Process) -> None:
        self._process = process
        self._sampler: asyncio.Task[None] | None = None
        self.cpu_s = 0.0
        self.rss_end = self.rss_peak = 0

    def open(self) -> None:
        self.cpu_s = -_cpu_s(self._process)
        self._sampler = asyncio.create_task(self._sample_rss(), name="rss-peak")

    def close(self) -> None:
        self.cpu_s += _cpu_s(self._process)
        self.rss_end = self._process.memory_info().rss
        self.rss_peak = max(self.rss_peak, self.rss_end)
        if self._sampler is not None:
            self._sampler.cancel()

    async def _sample_rss(self) -> None:
        while True:
            self.rss_peak = max(self.rss_peak, self._process.memory_info().rss)
            await asyncio.sleep(0.5)


async def _drive(server: Running, *options: str) -> dict[str, Any]:
    """Run the generator; sample the server over its measured window."""
    generator = await _generator(server.url, *options)
    assert generator.stdout is not None
    window = _Window(server.process)
    result: dict[str, Any] = {}
    async for raw in generator.stdout:
        line = raw.decode().strip()
        if line == "MEASURING":
            window.open()
        elif line == "MEASURED":
            window.close()
        elif line.startswith("{"):
            result = json.loads(line)
    if await generator.wait() != 0 or not result:
        raise RuntimeError(f"loadgen.js failed ({generator.returncode})")
    result["server"] = {
        "cpu_pct_of_one_core": round(100 * window.cpu_s / result["measured_s"], 1),
        "cpu_us_per_msg": round(1e6 * window.cpu_s / max(result["messages"], 1), 1),
        "rss_mb": round(window.rss_end / 2**20, 1),
        "rss_peak_mb": round(window.rss_peak / 2**20, 1),
        "stderr_lines": len(server.stderr),
        "stderr_first": server.stderr[:3],
    }
    return result


async def _side(name: str, args: argparse.Namespace) -> dict[str, Any]:
    start = SERVERS[name]
    async with start(args, args.connections) as server:
        self_check = await _self_check(name, server)
        closed = await _drive(
            server,
            *("--mode", "closed", "--connections", str(args.connections)),
            *("--warmup", str(args.warmup), "--duration", str(args.duration)),
        )
    side: dict[str, Any] = {"per_message": PER_MESSAGE[name], "self_check": self_check}
    side["closed_loop"] = closed
    if args.idle_connections:
        async with start(args, args.idle_connections) as server:
            side["idle"] = await _drive(
                server,
                *("--mode", "open", "--connections", str(args.idle_connections)),
                *("--interval", str(args.idle_interval), "--warmup", str(args.idle_interval)),
                *("--duration", str(args.idle_hold)),
            )
    return side


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 2)


def _ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    o, t = ours["closed_loop"], theirs["closed_loop"]
    ratios = {
        "msg_per_s": _ratio(o["msg_per_s"], t["msg_per_s"]),
        "cpu_us_per_msg": _ratio(o["server"]["cpu_us_per_msg"], t["server"]["cpu_us_per_msg"]),
        "p50_ms": _ratio(o["latency_ms"]["p50"], t["latency_ms"]["p50"]),
        "p99_ms": _ratio(o["latency_ms"]["p99"], t["latency_ms"]["p99"]),
    }
    if "idle" in ours and "idle" in theirs:
        ratios["idle_rss_mb"] = _ratio(
            ours["idle"]["server"]["rss_mb"], theirs["idle"]["server"]["rss_mb"]
        )
    return ratios


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    _raise_fd_limit()
    os.sched_setaffinity(0, {GENERATOR_CPU})  # this process waits; the server keeps CPU 0
    node_version = _ensure_node_modules()
    _check_same_frames()
    load_before = os.getloadavg()
    started = time.monotonic()
    names = [args.only] if args.only else ["ours", "theirs"]
    sides = {name: await _side(name, args) for name in names}
    result: dict[str, Any] = {"servers": sides}
    if len(sides) == 2:
        result["ours_over_theirs"] = _ratios(sides["ours"], sides["theirs"])
    errors = sum(
        s["closed_loop"]["errors"] + s.get("idle", {}).get("errors", 0) for s in sides.values()
    )
    result["errors"] = errors
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["core_src"] = str(args.core_src) if args.core_src else "this checkout"
    result["node"] = node_version
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=50, help="closed-loop connections")
    parser.add_argument("--warmup", type=float, default=3.0, help="closed-loop warm-up seconds")
    parser.add_argument("--duration", type=float, default=15.0, help="closed-loop measured s")
    parser.add_argument("--idle-connections", type=int, default=10_000, help="0: skip the RSS run")
    parser.add_argument("--idle-interval", type=float, default=10.0, help="s between reports")
    parser.add_argument("--idle-hold", type=float, default=20.0, help="measured s of the hold")
    parser.add_argument("--only", choices=sorted(SERVERS), default=None)
    parser.add_argument(
        "--core-src", type=Path, default=None, help="run our core from this checkout's packages/"
    )
    parser.add_argument(
        "--theirs-strict-off",
        action="store_true",
        help="start ocpp-ws-io without strictMode: the self-check must then stop the run",
    )
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(_run(args))
    except SelfCheckFailed as exc:
        print(f"self-check failed: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
