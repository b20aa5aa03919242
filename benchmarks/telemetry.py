"""Regional telemetry at fleet scale: simulated sites publishing summaries through the
production mosquitto config (TLS, client certificates, ACL) into the core's real ingest.

* every site is one paho MQTT v5 client with its own certificate (CN = site id), QoS 1,
  publishing one ``vpp.site.summary/1`` every ``--interval-s`` (sites spread over the
  interval, as unsynchronised gateways are); many sites share a worker process, whose paho
  clients are driven by one selector loop (no thread per client);
* the core side is ``TelemetryIngest`` with the SQLite ``TelemetrySqlStore`` (manual ack
  after commit), in this process;
* end-to-end latency = committed in the core's store minus the summary's ``at`` (stamped
  just before publish; one machine, one clock); throughput = accepted summaries per second
  over the measurement window (after a warm-up).

Prints one JSON object. Defaults take ~30 s (certificates, connects, 3 s warm-up, 10 s
measured); ``--duration-s 120`` for a longer run.

    .venv/bin/python benchmarks/telemetry.py
    .venv/bin/python benchmarks/telemetry.py --sites 1000 --duration-s 120 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import heapq
import json
import multiprocessing as mp
import os
import resource
import selectors
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.integration.telemetry: the production-config broker

import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # type: ignore[import-untyped]  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from tests.integration.telemetry.production_broker import ProductionBroker  # noqa: E402
from v2g_common.pki import PkiLayout, client_context, provision  # noqa: E402
from v2g_common.telemetry import (  # noqa: E402
    SiteSummary,
    TelemetryMessage,
    encode_message,
    summary_topic,
)
from vpp_core.ingest import (  # noqa: E402
    IngestConfig,
    IngestMetrics,
    SiteRecord,
    TelemetryIngest,
    TelemetrySqlStore,
    telemetry_engine,
)

REGION = "bench"


def _raise_nofile(need: int) -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        soft = min(hard, max(need, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft < need:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} < {need} needed")
    return {"soft": soft, "hard": hard}


# --- publisher worker (child process) ---------------------------------------------------------


def _summary(site: str, seq: int, interval_s: float) -> bytes:
    return encode_message(
        SiteSummary(
            site=site,
            region=REGION,
            stream="bench",
            seq=seq,
            at=dt.datetime.now(dt.UTC),
            interval_s=interval_s,
            chargers=1,
            chargers_reporting=1,
            sessions_connected=2,
            v2x_sessions=1,
            available_discharge_w=7000.0,
            available_charge_w=11000.0,
            power_w=-3500.0,
            soc_min_pct=40.0,
            soc_mean_pct=60.0,
            soc_max_pct=80.0,
            energy_import_wh=1000.0 + seq,
            energy_export_wh=500.0 + seq,
            fail_safe=False,
        )
    )


def _connect(site: str, pki_root: str, port: int, acked: list[int]) -> mqtt.Client:
    layout = PkiLayout(Path(pki_root))
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=site, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.tls_set_context(
        client_context(layout.ca_cert, cert=layout.client_cert(site), key=layout.client_key(site))
    )
    client.max_inflight_messages_set(100)

    def on_publish(_c: Any, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        acked[0 if reason.value < 0x80 else 1] += 1

    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=60)
    return client


def _service(sel: selectors.BaseSelector, dirty: set[mqtt.Client], timeout: float) -> None:
    """Read what arrived, then write only for clients with something pending (``dirty``):
    polling 500 clients' ``want_write()`` each pass would cost more CPU than the MQTT work."""
    for key, _ in sel.select(timeout):
        client: mqtt.Client = key.data
        client.loop_read(10)
        sock = client.socket()
        while sock is not None and hasattr(sock, "pending") and sock.pending():
            client.loop_read(10)
        if client.want_write():
            dirty.add(client)
    for client in list(dirty):
        client.loop_write()
        if not client.want_write():
            dirty.discard(client)


def _await_connected(clients: list[mqtt.Client], sel: selectors.BaseSelector) -> None:
    deadline = time.monotonic() + 60
    dirty = set(clients)
    while not all(c.is_connected() for c in clients):
        _service(sel, dirty, 0.01)
        if time.monotonic() > deadline:
            raise SystemExit("publishers could not connect")


def publisher_worker(
    sites: list[str],
    pki_root: str,
    port: int,
    interval_s: float,
    run_s: float,
    ready: Any,
    start_at: Any,
    results: Any,
) -> None:
    acked = [0, 0]
    clients = [_connect(site, pki_root, port, acked) for site in sites]
    sel = selectors.DefaultSelector()
    for client in clients:
        sock = client.socket()
        assert sock is not None
        sel.register(sock, selectors.EVENT_READ, client)
    _await_connected(clients, sel)
    ready.put(len(clients))
    t0 = start_at.get()
    due = [(t0 + i * interval_s / len(sites), i) for i in range(len(sites))]
    heapq.heapify(due)
    seqs = [0] * len(sites)
    dirty: set[mqtt.Client] = set()
    published, lateness, last_misc = 0, 0.0, time.monotonic()
    while time.time() < t0 + run_s:
        now = time.time()
        while due[0][0] <= now:
            at, i = heapq.heappop(due)
            seqs[i] += 1
            lateness = max(lateness, now - at)
            payload = _summary(sites[i], seqs[i], interval_s)
            clients[i].publish(summary_topic(REGION, sites[i]), payload, qos=1)
            if clients[i].want_write():
                dirty.add(clients[i])
            published += 1
            heapq.heappush(due, (at + interval_s, i))
        _service(sel, dirty, max(0.0, min(due[0][0] - time.time(), 0.05)))
        if time.monotonic() - last_misc > 1:
            for client in clients:
                client.loop_misc()
            last_misc = time.monotonic()
    drain_until = time.monotonic() + 5
    while acked[0] + acked[1] < published and time.monotonic() < drain_until:
        _service(sel, dirty, 0.01)
    for client in clients:
        client.disconnect()
    results.put(
        {
            "published": published,
            "acked": acked[0],
            "refused": acked[1],
            "max_lateness_s": lateness,
            "cpu_s": time.process_time(),
        }
    )


# --- core side (this process) ------------------------------------------------------------------


class TimingStore:
    """The real SQLite store, timing each accepted summary from its ``at`` to the commit."""

    def __init__(self, inner: TelemetrySqlStore) -> None:
        self.inner = inner
        self.latencies_s: list[tuple[float, float]] = []  # (commit wall time, latency)
        self.accepted = 0
        self.duplicates = 0

    async def record_batch(
        self, messages: Sequence[TelemetryMessage], *, received_at: dt.datetime
    ) -> list[bool]:
        outcomes = await self.inner.record_batch(messages, received_at=received_at)
        done = dt.datetime.now(dt.UTC)
        for message, new in zip(messages, outcomes, strict=True):
            if new:
                self.accepted += 1
                self.latencies_s.append((done.timestamp(), (done - message.at).total_seconds()))
            else:
                self.duplicates += 1
        return outcomes

    async def site_records(self) -> list[SiteRecord]:
        return await self.inner.site_records()


def _cpu(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return float(times.user + times.system)


def _p99_timeline(samples: list[tuple[float, float]], window: tuple[float, float]) -> list[float]:
    """p99 latency (ms) of each second of the window: shows whether the tail is steady or
    a few stalls (GC, checkpoint, a CPU-starved moment on a shared machine)."""
    buckets: dict[int, list[float]] = {}
    for at, latency in samples:
        if window[0] <= at < window[1]:
            buckets.setdefault(int(at - window[0]), []).append(latency)
    return [round(_percentile(sorted(buckets[k]), 0.99) * 1000, 1) for k in sorted(buckets)]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


async def _run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    sites = [f"bench-{i:05d}" for i in range(args.sites)]
    t = time.monotonic()
    layout = provision(workdir / "pki", clients=[*sites, "core"])
    pki_s = time.monotonic() - t
    broker = ProductionBroker(workdir, layout)
    broker.start()
    engine = telemetry_engine(f"sqlite+aiosqlite:///{workdir}/core.db")
    store = TimingStore(TelemetrySqlStore(engine))
    await store.inner.migrate()
    config = IngestConfig(
        broker_host="127.0.0.1",
        broker_port=broker.port,
        ca_file=layout.ca_cert,
        cert_file=layout.client_cert("core"),
        key_file=layout.client_key("core"),
    )
    try:
        async with TelemetryIngest(
            config, store, metrics=IngestMetrics(CollectorRegistry())
        ) as ing:
            await asyncio.wait_for(ing.subscribed.wait(), 20)
            return await _drive(args, sites, layout, broker, store, pki_s)
    finally:
        broker.stop()
        await engine.dispose()


async def _drive(
    args: argparse.Namespace,
    sites: list[str],
    layout: PkiLayout,
    broker: ProductionBroker,
    store: TimingStore,
    pki_s: float,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, start_at, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    run_s = args.warmup_s + args.duration_s
    chunks = [sites[i :: args.workers] for i in range(args.workers)]
    procs = [
        ctx.Process(
            target=publisher_worker,
            args=(
                chunk,
                str(layout.root),
                broker.port,
                args.interval_s,
                run_s,
                ready,
                start_at,
                results,
            ),
            daemon=True,
        )
        for chunk in chunks
    ]
    t = time.monotonic()
    for p in procs:
        p.start()
    loop = asyncio.get_running_loop()
    connected = sum([await loop.run_in_executor(None, ready.get, True, 120) for _ in procs])
    connect_s = time.monotonic() - t
    t0 = time.time() + 0.5
    for _ in procs:
        start_at.put(t0)
    broker_proc = psutil.Process(broker.proc.pid) if broker.proc else None
    cpu0 = (time.process_time(), _cpu(broker_proc))
    worker_stats = [await loop.run_in_executor(None, results.get, True, run_s + 60) for _ in procs]
    for p in procs:
        p.join(10)
    await asyncio.sleep(1.0)  # last commits
    cpu_core = time.process_time() - cpu0[0]
    cpu_broker = _cpu(broker_proc) - cpu0[1]
    window = (t0 + args.warmup_s, t0 + run_s)
    lat = sorted(d for at, d in store.latencies_s if window[0] <= at < window[1])
    published = sum(w["published"] for w in worker_stats)
    return {
        "benchmark": "telemetry",
        "sites": len(sites),
        "connected_sites": connected,
        "workers": args.workers,
        "interval_s": args.interval_s,
        "warmup_s": args.warmup_s,
        "duration_s": args.duration_s,
        "offered_msgs_per_s": len(sites) / args.interval_s,
        "published": published,
        "broker_acked": sum(w["acked"] for w in worker_stats),
        "broker_refused": sum(w["refused"] for w in worker_stats),
        "publisher_max_lateness_s": round(max(w["max_lateness_s"] for w in worker_stats), 4),
        "ingested_total": store.accepted,
        "duplicates": store.duplicates,
        "ingested_in_window": len(lat),
        "ingest_throughput_msgs_per_s": round(len(lat) / args.duration_s, 1),
        "latency_ms": {
            "p50": round(_percentile(lat, 0.50) * 1000, 1),
            "p90": round(_percentile(lat, 0.90) * 1000, 1),
            "p99": round(_percentile(lat, 0.99) * 1000, 1),
            "max": round((lat[-1] if lat else float("nan")) * 1000, 1),
        },
        "target_p99_ms": 250,
        "p99_within_target": bool(lat) and _percentile(lat, 0.99) < 0.250,
        "latency_p99_ms_per_second": _p99_timeline(store.latencies_s, window),
        "cpu_s_during_run": {
            "core_ingest_process": round(cpu_core, 2),
            "broker": round(cpu_broker, 2),
            "publishers": round(sum(w["cpu_s"] for w in worker_stats), 2),
            "run_s": run_s,
        },
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "setup_s": {"pki": round(pki_s, 1), "connect": round(connect_s, 1)},
        "store": "sqlite (WAL)",
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="publisher processes")
    parser.add_argument("--interval-s", type=float, default=1.0)
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--duration-s", type=float, default=10.0, help="measured window")
    args = parser.parse_args(argv)
    limits = _raise_nofile(2 * args.sites + 512)  # broker: one fd per site, publishers too
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None  # cheap fsyncs for 2,000 PEMs
    workdir = Path(tempfile.mkdtemp(prefix="bench-telemetry-", dir=base))
    try:
        result = asyncio.run(_run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["rlimit_nofile"] = limits
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
