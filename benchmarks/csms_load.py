"""Load on the CSMS: N light-weight stations against a real ``vpp-core run`` process.

The core runs as its own process pinned to CPU 0; this process (the stations: raw websockets
clients, one coroutine each) pins itself to CPU 1. Prints one JSON document.

Open loop (default): every station sends ``TransactionEvent(Updated)`` with meter values
every ``--interval`` seconds (phases spread evenly), so N stations make N/interval msg/s.
Closed loop (``--closed-loop C``): C connections send back-to-back, for peak throughput of
schema-validated messages.

    .venv/bin/python benchmarks/csms_load.py                      # 1000 stations, 20 s
    .venv/bin/python benchmarks/csms_load.py --stations 10000 --duration 60
    .venv/bin/python benchmarks/csms_load.py --closed-loop 50 --duration 15
    .venv/bin/python benchmarks/csms_load.py --no-gc-tuning       # compare GC settings

Stations use security profile 1 (Basic auth, plain ws, cheap scrypt cost) so the numbers
are the OCPP path, not TLS handshakes; ``--tls`` measures profile 2 instead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vpp_core.fleet import FleetStore, StationEntry, hash_password  # noqa: E402
from vpp_core.fleet.registry import legacy_scrypt_hash  # noqa: E402

PASSWORD = "benchmark-password-0001"
ANSWER_TIMEOUT_S = 10.0


@dataclass
class Tally:
    """What the stations saw, counted only inside the measuring window."""

    measuring: bool = False
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    connected: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _identity(i: int) -> str:
    return f"LOAD-{i:05d}"


# -- the core process ---------------------------------------------------------------------


async def _provision(url: str, count: int, *, profile: int, old_scheme: bool = False) -> None:
    """Register the stations; ``old_scheme``: scrypt at log2 N 4, which a core from before
    the fast scheme (``--core-src``) verifies too, as cheaply as that core's benchmark did."""
    store = await FleetStore.open(url)
    try:
        hashed = legacy_scrypt_hash(PASSWORD, log2_n=4) if old_scheme else hash_password(PASSWORD)
        entries = [
            StationEntry(_identity(i), profile, True, "bench", "bench", hashed)
            for i in range(count)
        ]
        await store.add_stations(entries, now=datetime.now(UTC))
    finally:
        await store.close()


def _write_config(work: Path, args: argparse.Namespace, port: int, metrics_port: int) -> Path:
    tls = ""
    if args.tls:
        from v2g_common.pki import provision

        layout = provision(work / "pki")
        cert, key = layout.server_cert("csms"), layout.server_key("csms")
        tls = f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'
    g0, g1, g2 = (int(x) for x in args.gc_thresholds.split(","))
    tuned = (
        f"[runtime]\ngc_gen0_threshold = {g0}\ngc_gen1_threshold = {g1}\ngc_gen2_threshold = {g2}\n"
    )
    gc = (
        tuned
        if args.gc_tuning
        else "[runtime]\ngc_freeze_after_start = false\n"
        "gc_gen0_threshold = 700\ngc_gen1_threshold = 10\ngc_gen2_threshold = 10\n"
    )
    config = work / "core.toml"
    config.write_text(
        f"""[csms]
host = "127.0.0.1"
port = {port}
allow_security_profile_1 = true
max_messages_per_s = 1000000.0
message_burst = 1000000
auth_workers = 1
{tls}
[fleet]
registry_refresh_s = {args.registry_refresh_s}
write_interval_s = {args.write_interval_s}
database_url = "{args.database_url or f"sqlite:///{work / 'fleet.db'}"}"
[metrics]
port = {metrics_port}
{gc}"""
    )
    return config


def _start_core(config: Path, core_src: Path | None = None) -> subprocess.Popen[bytes]:
    """``vpp-core run`` pinned to CPU 0; from another checkout's ``packages/`` with
    ``core_src`` (a before/after on the same machine)."""
    env = dict(os.environ)
    if core_src is not None:
        packages = core_src / "packages"
        env["PYTHONPATH"] = os.pathsep.join(str(packages / p) for p in ("core", "common"))
    core = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpp_core.app",
            "--config",
            str(config),
            "--log-level=WARNING",
            "run",
        ],
        cwd=core_src or ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(core.pid, {0})
    return core


def drain_stderr(core: subprocess.Popen[bytes]) -> list[str]:
    """Read the core's stderr to its end in a thread, into the list returned. Once the pipe is
    full (64 KiB: a few hundred WARNING lines, e.g. one per station at 10,000 stations) the
    core's next log call blocks its event loop, and the run measures the pipe."""
    lines: list[str] = []
    assert core.stderr is not None
    stream = core.stderr

    def read() -> None:
        for line in stream:
            lines.append(line.decode(errors="replace").rstrip())

    threading.Thread(target=read, name="core-stderr", daemon=True).start()
    return lines


async def _wait_listening(port: int, core: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(60):
        while True:
            if core.poll() is not None:
                raise RuntimeError(
                    f"vpp-core exited: {core.stderr.read().decode() if core.stderr else ''}"
                )
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.2)


# -- the stations ---------------------------------------------------------------------------


def _frame(message_id: int, seq: int, tx: str, ts: str, import_wh: int) -> str:
    # Built as text: a json.dumps per message would make the generator the bottleneck.
    return (
        f'[2,"{message_id}","TransactionEvent",{{"eventType":"Updated","timestamp":"{ts}",'
        f'"triggerReason":"MeterValuePeriodic","seqNo":{seq},'
        f'"transactionInfo":{{"transactionId":"{tx}","chargingState":"Charging"}},'
        f'"evse":{{"id":1,"connectorId":1}},"meterValue":[{{"timestamp":"{ts}","sampledValue":['
        f'{{"value":-7000,"measurand":"Power.Active.Import"}},'
        f'{{"value":{import_wh},"measurand":"Energy.Active.Import.Register"}},'
        f'{{"value":{import_wh // 2},"measurand":"Energy.Active.Export.Register"}},'
        f'{{"value":55.5,"measurand":"SoC","location":"EV"}}]}}]}}]'
    )


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RawWebSocket(asyncio.Protocol):
    """A minimal websocket client: one request in flight, frames built by hand.

    The stations must cost far less than the server, or the generator (not the CSMS) is what
    gets measured. Client frames must be masked; a zero mask key is legal and leaves the
    payload as is, so sending is one ``write`` of header + text.
    """

    def __init__(self, handshake: bytes) -> None:
        self._handshake = handshake
        self._buffer = bytearray()
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._answer: asyncio.Future[bytes] | None = None
        self.refusal: bytes | None = None  # the HTTP head of a refused handshake

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError(f"connection lost: {exc}")
        for future in (self.opened, self._answer):
            if future is not None and not future.done():
                future.set_exception(error)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.refusal = head
                self.opened.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self._upgraded = True
            self.opened.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            opcode, length, offset = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == 0x9 and self.transport is not None:  # ping -> pong
                self.transport.write(_header(0x8A, len(payload)) + payload)
            elif opcode in (0x1, 0x2) and payload.startswith(b"[2"):
                continue  # a CALL from the core (a survey, a trigger): not our answer; unanswered
            elif opcode in (0x1, 0x2) and self._answer is not None and not self._answer.done():
                self._answer.set_result(payload)

    async def exchange(self, text: str) -> bytes:
        assert self.transport is not None
        data = text.encode()
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(_header(0x81, len(data)) + data)
        return await self._answer


def _header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, 0x80 | length)) + b"\0\0\0\0"
    if length < 65536:
        return bytes((first, 0x80 | 126)) + length.to_bytes(2, "big") + b"\0\0\0\0"
    return bytes((first, 0x80 | 127)) + length.to_bytes(8, "big") + b"\0\0\0\0"


async def _exchange(ws: RawWebSocket, frame: str, message_id: int, tally: Tally) -> None:
    started = time.perf_counter()
    async with asyncio.timeout(ANSWER_TIMEOUT_S):
        reply = await ws.exchange(frame)
    elapsed = time.perf_counter() - started
    if not reply.startswith(f'[3,"{message_id}"'.encode()):
        tally.error("callerror" if reply.startswith(b"[4") else "bad-answer")
    elif tally.measuring:
        tally.latencies_s.append(elapsed)


async def _open(url: str, identity: str, tally: Tally) -> RawWebSocket | None:
    scheme, _, rest = url.partition("://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    token = base64.b64encode(f"{identity}:{PASSWORD}".encode()).decode()
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /{path}/{identity} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: ocpp2.1\r\nAuthorization: Basic {token}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(60):
            _transport, protocol = await loop.create_connection(
                lambda: RawWebSocket(handshake), host, int(port), ssl=_client_ssl(scheme)
            )
            await protocol.opened
    except (OSError, TimeoutError, ConnectionError) as exc:
        tally.error(f"connect:{type(exc).__name__}")
        return None
    tally.connected += 1
    return protocol


@functools.cache  # one context for all stations: building one loads the CA store (~36 ms)
def _client_ssl(scheme: str) -> Any:
    if scheme != "wss":
        return None
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # load test on loopback: the server cert is not the point
    return ctx


async def _station_open_loop(
    ws: RawWebSocket, index: int, args: argparse.Namespace, tally: Tally, stop: float
) -> None:
    tx = f"tx-{index}"
    message_id = seq = 0
    phase = (index / args.stations) * args.interval
    next_at = time.monotonic() + phase
    while True:
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() >= stop:
            return
        message_id += 1
        seq += 1
        try:
            await _exchange(
                ws, _frame(message_id, seq, tx, _now_text(), 1000 + seq), message_id, tally
            )
        except TimeoutError:
            tally.error("timeout")
        except Exception as exc:
            tally.error(type(exc).__name__)
            return
        next_at += args.interval


async def _station_closed_loop(ws: RawWebSocket, index: int, tally: Tally, stop: float) -> None:
    tx = f"tx-{index}"
    message_id = 0
    ts = _now_text()
    while time.monotonic() < stop:
        message_id += 1
        try:
            await _exchange(
                ws, _frame(message_id, message_id, tx, ts, 1000 + message_id), message_id, tally
            )
        except Exception as exc:
            tally.error(type(exc).__name__)
            return


async def _connect_all(
    url: str, count: int, tally: Tally, *, rate_per_s: float
) -> list[RawWebSocket | None]:
    sockets: list[RawWebSocket | None] = []
    batch = max(1, int(rate_per_s / 10))
    for start in range(0, count, batch):
        chunk = range(start, min(count, start + batch))
        sockets += await asyncio.gather(*(_open(url, _identity(i), tally) for i in chunk))
        await asyncio.sleep(0.1)
    return sockets


def _gc_pauses(metrics_port: int) -> dict[str, dict[str, float]]:
    """Collections during the whole run, from the core's own Prometheus histogram."""
    import urllib.request

    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if not line.startswith("vpp_runtime_gc_pause_seconds"):
            continue
        name, value = line.rsplit(" ", 1)
        gen = name.split('generation="')[1].split('"')[0]
        stats = out.setdefault(f"gen{gen}", {})
        if name.startswith("vpp_runtime_gc_pause_seconds_count"):
            stats["count"] = float(value)
        elif name.startswith("vpp_runtime_gc_pause_seconds_sum"):
            stats["total_s"] = round(float(value), 3)
        elif 'le="0.025"' in name:
            stats["le_25ms"] = float(value)
    return out


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _drive(args: argparse.Namespace, url: str, core: psutil.Process) -> dict[str, Any]:
    tally = Tally()
    count = args.closed_loop or args.stations
    connect_started = time.monotonic()
    sockets = await _connect_all(url, count, tally, rate_per_s=args.connect_rate)
    connect_s = time.monotonic() - connect_started
    warmup_s = (
        args.warmup
        if args.warmup is not None
        else (2.0 if args.closed_loop else min(args.interval, 10.0))
    )
    stop = time.monotonic() + warmup_s + args.duration
    async with asyncio.TaskGroup() as tg:
        for i, ws in enumerate(sockets):
            if ws is not None:
                coro = (
                    _station_closed_loop(ws, i, tally, stop)
                    if args.closed_loop
                    else _station_open_loop(ws, i, args, tally, stop)
                )
                tg.create_task(coro)
        await asyncio.sleep(warmup_s)
        me = psutil.Process()
        cpu_before, mine_before = core.cpu_times(), me.cpu_times()
        tally.measuring = True
        measure_started = time.monotonic()
        rss_peak = 0
        while time.monotonic() < stop:
            rss_peak = max(rss_peak, core.memory_info().rss)
            await asyncio.sleep(0.5)
        tally.measuring = False
        measured_s = time.monotonic() - measure_started
        cpu_after, mine_after = core.cpu_times(), me.cpu_times()
    for ws in sockets:
        if ws is not None and ws.transport is not None:
            ws.transport.abort()
    cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    client_s = (mine_after.user + mine_after.system) - (mine_before.user + mine_before.system)
    lat = tally.latencies_s
    return {
        "mode": "closed-loop" if args.closed_loop else "open-loop",
        "stations": count,
        "connected": tally.connected,
        "connect_s": round(connect_s, 1),
        "interval_s": None if args.closed_loop else args.interval,
        "warmup_s": warmup_s,
        "duration_s": round(measured_s, 1),
        "messages": len(lat),
        "msg_per_s": round(len(lat) / measured_s, 1),
        "latency_ms": {
            "p50": round(_percentile(lat, 0.50) * 1e3, 2),
            "p99": round(_percentile(lat, 0.99) * 1e3, 2),
            "max": round(max(lat, default=float("nan")) * 1e3, 2),
        },
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "core": {
            "rss_mb": round(core.memory_info().rss / 2**20, 1),
            "rss_peak_mb": round(rss_peak / 2**20, 1),
            "cpu_pct_of_one_core": round(100 * cpu_s / measured_s, 1),
        },
        "stations_process_cpu_pct": round(100 * client_s / measured_s, 1),
        "load_average": os.getloadavg(),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    fd_limit = _raise_fd_limit()
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="csms-load-") as tmp:
        work = Path(tmp)
        port = _free_port()
        metrics_port = _free_port()
        config = _write_config(work, args, port, metrics_port)
        db_url = args.database_url or f"sqlite:///{work / 'fleet.db'}"
        await _provision(
            db_url,
            args.closed_loop or args.stations,
            profile=2 if args.tls else 1,
            old_scheme=args.core_src is not None,
        )
        core_proc = _start_core(config, args.core_src)
        try:
            await _wait_listening(port, core_proc)
            core_log = drain_stderr(core_proc)
            scheme = "wss" if args.tls else "ws"
            result = await _drive(
                args, f"{scheme}://127.0.0.1:{port}/ocpp", psutil.Process(core_proc.pid)
            )
            result["core_gc_pauses"] = _gc_pauses(metrics_port)
            result["core_log_lines"] = len(core_log)  # WARNING and up
        finally:
            core_proc.terminate()
            try:
                core_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                core_proc.kill()
    result["gc_tuning"] = args.gc_thresholds if args.gc_tuning else "python defaults, no freeze"
    result["tls"] = args.tls
    result["core_src"] = str(args.core_src) if args.core_src else "this checkout"
    result["database"] = "postgresql" if args.database_url else "sqlite"
    result["fd_limit"] = fd_limit
    result["targets"] = {
        "p99_ms_lt": 25,
        "errors": 0,
        "rss_mb_lt": 1024,
        "peak_msg_per_s_ge": 10_000,
    }
    return result


def option_parser() -> argparse.ArgumentParser:
    """The options; their defaults are the configuration other benchmarks start the core with
    (``csms_vs_node.py``)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between a station's reports"
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, help="measured seconds (after warm-up)"
    )
    parser.add_argument(
        "--closed-loop", type=int, default=0, metavar="C", help="C connections back-to-back"
    )
    parser.add_argument(
        "--connect-rate", type=float, default=1000.0, help="new connections per second"
    )
    parser.add_argument("--registry-refresh-s", type=float, default=5.0)
    parser.add_argument("--write-interval-s", type=float, default=0.5)
    parser.add_argument("--tls", action="store_true", help="security profile 2 (TLS + Basic auth)")
    parser.add_argument("--no-gc-tuning", dest="gc_tuning", action="store_false")
    parser.add_argument("--gc-thresholds", default="50000,20,100", help="gen0,gen1,gen2 (tuned)")
    parser.add_argument(
        "--database-url", default=None, help="postgresql://... (default: temp SQLite)"
    )
    parser.add_argument(
        "--core-src", type=Path, default=None, help="run the core from this checkout's packages/"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = option_parser().parse_args(argv)
    print(json.dumps(asyncio.run(_run(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
