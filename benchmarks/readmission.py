"""Re-admission after a core restart: N security-profile-2 stations (TLS + Basic auth) against
a ``vpp-core run`` that has just been started, as gateways behave when their core died.

At t = 0 the core is started (its own process, pinned to CPU 0) and every station starts
reconnecting at once (this process, pinned to CPU 1: raw TLS websocket clients, one
coroutine each). A station does what ``v2g_gateway.station.link`` does: a failed attempt
(connection refused while the core starts, a timeout after ``--open-timeout``, a refusal)
waits ``backoff_s`` (1 s doubling to 60 s, half of it jittered), at least the ``Retry-After``
of a 503; an admitted one sends BootNotification and counts as re-admitted at its answer.
Prints one JSON document: when every station was back (from t = 0 and from the moment the
core listened), percentiles, attempts by outcome, the core's CPU and RSS.

    .venv/bin/python benchmarks/readmission.py --stations 10000
    .venv/bin/python benchmarks/readmission.py --stations 10000 --old-scheme
    .venv/bin/python benchmarks/readmission.py --stations 10000 --busy-core-cpu 1
    .venv/bin/python benchmarks/readmission.py --stations 10000 --old-scheme \\
        --core-src /tmp/main-46611c7 --deadline 300     # main before this change

``--old-scheme`` stores every password as main did (scrypt, log2 N 14; one hash shared by
all rows, which costs the same per check): on this code that is the one-time migration storm,
each row rewritten at its login. ``--core-src DIR`` runs the core from another checkout's
``packages/`` (the stations stay this code), for a before/after on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.csms_load import (  # noqa: E402
    RawWebSocket,
    _client_ssl,
    _free_port,
    _percentile,
    _raise_fd_limit,
    _start_core,
)
from v2g_common.pki import provision  # noqa: E402
from v2g_gateway.station.link import backoff_s  # noqa: E402
from vpp_core.csms.tls_buffers import limit_tls_read_buffer  # noqa: E402
from vpp_core.fleet import FleetStore, StationEntry, hash_password  # noqa: E402
from vpp_core.fleet.registry import legacy_scrypt_hash  # noqa: E402

PASSWORD = "readmission-password-0001"
BOOT = (
    '[2,"1","BootNotification",'
    '{"chargingStation":{"model":"M","vendorName":"V"},"reason":"PowerUp"}]'
)


@dataclass
class Swarm:
    """What the stations saw; times are seconds from t = 0 (the core's start)."""

    t0: float
    admitted_s: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    retry_after_s: list[int] = field(default_factory=list)
    sockets: list[RawWebSocket] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def _identity(i: int) -> str:
    return f"READMIT-{i:05d}"


async def _provision(url: str, count: int, *, old_scheme: bool) -> None:
    hashed = legacy_scrypt_hash(PASSWORD) if old_scheme else hash_password(PASSWORD)
    store = await FleetStore.open(url)
    try:
        entries = [StationEntry(_identity(i), 2, True, "b", "b", hashed) for i in range(count)]
        await store.add_stations(entries, now=datetime.now(UTC))
    finally:
        await store.close()


def _write_config(work: Path, port: int, metrics_port: int, args: argparse.Namespace) -> Path:
    layout = provision(work / "pki")
    config = work / "core.toml"
    config.write_text(
        f"""[csms]
host = "127.0.0.1"
port = {port}
tls_cert_file = "{layout.server_cert("csms")}"
tls_key_file = "{layout.server_key("csms")}"
ping_interval_s = 0.0
{f"listen_backlog = {args.listen_backlog}" if args.listen_backlog else ""}
{f"max_opening_connections = {args.max_opening}" if args.max_opening else ""}
[fleet]
database_url = "sqlite:///{work / "fleet.db"}"
[metrics]
port = {metrics_port}
"""
    )
    return config


def _listen_overflows() -> int:
    """The kernel's count of connections dropped because an accept queue was full (the whole
    machine's: /proc/net/netstat TcpExt ListenOverflows)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(row.get("ListenOverflows", 0))
    return 0


class Refused(Exception):
    """The core answered the handshake with an HTTP status other than 101."""

    def __init__(self, head: bytes) -> None:
        super().__init__(head.split(b"\r\n", 1)[0].decode())
        self.status = int(head.split(b" ", 2)[1])
        self.retry_after_s: int | None = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"retry-after" and value.strip().isdigit():
                self.retry_after_s = int(value)


async def _attempt(port: int, identity: str, open_timeout_s: float) -> RawWebSocket:
    token = base64.b64encode(f"{identity}:{PASSWORD}".encode()).decode()
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /ocpp/{identity} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: ocpp2.1\r\nAuthorization: Basic {token}\r\n\r\n"
    ).encode()
    protocol = RawWebSocket(handshake)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(open_timeout_s):
            await loop.create_connection(
                lambda: protocol, "127.0.0.1", port, ssl=_client_ssl("wss")
            )
            try:
                await protocol.opened
            except ConnectionError:
                if protocol.refusal is None:
                    raise
                raise Refused(protocol.refusal) from None
            reply = await protocol.exchange(BOOT)
    except BaseException:
        if protocol.transport is not None:
            protocol.transport.abort()
        raise
    if b'"Accepted"' not in reply:
        raise ConnectionError(f"boot not accepted: {reply[:80]!r}")
    return protocol


async def _station(i: int, args: argparse.Namespace, port: int, swarm: Swarm) -> None:
    rng = random.Random(i)
    identity = _identity(i)
    attempt = 0
    while time.monotonic() - swarm.t0 < args.deadline:
        asked: int | None = None
        try:
            protocol = await _attempt(port, identity, args.open_timeout)
        except TimeoutError:
            swarm.count("timeout")
        except Refused as refused:
            swarm.count(f"refused {refused.status}")
            asked = refused.retry_after_s
            if asked is not None:
                swarm.retry_after_s.append(asked)
        except OSError as exc:  # ConnectionRefusedError while the core starts, resets
            swarm.count(type(exc).__name__)
        else:
            swarm.admitted_s.append(time.monotonic() - swarm.t0)
            swarm.sockets.append(protocol)
            return
        delay = backoff_s(
            attempt, initial_s=1.0, max_s=60.0, factor=2.0, jitter=0.5, rng=rng, asked_s=asked
        )
        attempt += 1
        await asyncio.sleep(delay)


async def _listening_at(port: int, core: subprocess.Popen[bytes], swarm: Swarm) -> float:
    """Seconds from t = 0 until the core accepts connections (polled every 50 ms)."""
    while core.poll() is None:
        with contextlib.suppress(OSError):
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return time.monotonic() - swarm.t0
        await asyncio.sleep(0.05)
    raise RuntimeError(f"vpp-core exited: {core.stderr.read().decode() if core.stderr else ''}")


def _summary(swarm: Swarm, args: argparse.Namespace, listening_s: float) -> dict[str, Any]:
    times = swarm.admitted_s
    everyone = len(times) == args.stations
    last = max(times, default=float("nan"))
    return {
        "stations": args.stations,
        "admitted": len(times),
        "all_admitted": everyone,
        "core_listening_after_s": round(listening_s, 2),
        "all_admitted_after_s": round(last, 1) if everyone else None,
        "all_admitted_after_listening_s": round(last - listening_s, 1) if everyone else None,
        "admitted_by_deadline": len(times),
        "deadline_s": args.deadline,
        "admission_s": {
            q: round(_percentile(times, v), 1)
            for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        },
        "admitted_per_s_after_listening": round(len(times) / max(1e-9, last - listening_s), 1),
        "attempts_by_outcome": dict(sorted(swarm.outcomes.items())),
        "retry_after_s_seen": sorted(set(swarm.retry_after_s)),
    }


def _busy_loop_on_core_cpu() -> subprocess.Popen[bytes]:
    """A process spinning on CPU 0, the core's: other work on a loaded machine, on purpose."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(spinner.pid, {0})
    return spinner


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    fd_limit = _raise_fd_limit()
    limit_tls_read_buffer()  # the stations' side too: 256 KiB zero-filled per attempt otherwise
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="readmission-") as tmp:
        work = Path(tmp)
        port, metrics_port = _free_port(), _free_port()
        config = _write_config(work, port, metrics_port, args)
        await _provision(
            f"sqlite:///{work / 'fleet.db'}", args.stations, old_scheme=args.old_scheme
        )
        overflows = _listen_overflows()
        busy = [_busy_loop_on_core_cpu() for _ in range(args.busy_core_cpu)]
        swarm = Swarm(t0=time.monotonic())
        core = _start_core(config, args.core_src)
        me, proc = psutil.Process(), psutil.Process(core.pid)
        try:
            stations = [
                asyncio.create_task(_station(i, args, port, swarm)) for i in range(args.stations)
            ]
            listening_s = await _listening_at(port, core, swarm)
            await asyncio.gather(*stations)
            core_cpu, rss = proc.cpu_times(), proc.memory_info().rss
            client_cpu = me.cpu_times()
            overflows = _listen_overflows() - overflows
        finally:
            for ws in swarm.sockets:
                if ws.transport is not None:
                    ws.transport.abort()
            for process in busy:
                process.kill()
            core.terminate()
            try:
                core.wait(timeout=30)
            except subprocess.TimeoutExpired:
                core.kill()
    result = _summary(swarm, args, listening_s)
    result |= {
        "password_rows": "scrypt log2 N 14 (as main stored them)"
        if args.old_scheme
        else "hmac-sha256",
        "core_src": str(args.core_src) if args.core_src else "this checkout",
        "core_cpu_s": round(core_cpu.user + core_cpu.system, 1),
        "core_cpu_ms_per_admission": round(
            1e3 * (core_cpu.user + core_cpu.system) / max(1, len(swarm.admitted_s)), 2
        ),
        "core_rss_mb": round(rss / 2**20, 1),
        "stations_process_cpu_s": round(client_cpu.user + client_cpu.system, 1),
        "open_timeout_s": args.open_timeout,
        "max_opening_connections": args.max_opening or "core default",
        "busy_processes_on_core_cpu": args.busy_core_cpu,
        "listen_overflows_machine_wide": overflows,
        "fd_limit": fd_limit,
        "load_average": os.getloadavg(),
        "target": "10,000 stations re-admitted within 60 s on one core",
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--deadline", type=float, default=180.0, help="stop trying after (s)")
    parser.add_argument(
        "--open-timeout", type=float, default=10.0, help="per attempt (s), as the gateway"
    )
    parser.add_argument("--old-scheme", action="store_true", help="rows in main's scrypt scheme")
    parser.add_argument(
        "--core-src", type=Path, default=None, help="run the core from this checkout"
    )
    parser.add_argument(
        "--listen-backlog", type=int, default=None, help="[csms] listen_backlog (default: core's)"
    )
    parser.add_argument(
        "--max-opening",
        type=int,
        default=None,
        help="[csms] max_opening_connections (default: core's)",
    )
    parser.add_argument(
        "--busy-core-cpu",
        type=int,
        default=0,
        help="processes spinning on the core's CPU during the run (a loaded machine)",
    )
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_run(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
