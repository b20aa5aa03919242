"""The core as a cluster on this machine: stations spread over N = 1, 2, 4 CSMS nodes.

For each N: the benchmark's own nats-server (JetStream) and PostgreSQL database, N CSMS nodes
and one coordinator (``vpp-core run`` processes, ``[cluster] role``), HAProxy with the shipped
``etc/haproxy/vpp-csms.cfg``, and S light-weight OCPP 2.1 stations in this process
(``tests/support/cluster.py``) connecting through HAProxy, each sending a
``TransactionEvent(Updated)`` with meter values every ``--interval`` s (open loop). Measured:

- ``msgs_per_s_per_node``: websocket messages received per node (its
  ``vpp_csms_frames_received``) over the ``--duration`` window, and the node's CPU seconds per
  message (``cpu_ms_per_msg``: OCPP handling, validation, write-behind to PostgreSQL and the
  fleet-event publish to JetStream) and RSS per station held (``rss_kib_per_station``);
- ``p50_ms``/``p99_ms``: station-side round trip of those calls (through HAProxy);
- ``fanout_s``: POST /api/v1/dispatches (start now) on the coordinator until every station
  has received its SetChargingProfile (coordinator -> NATS request -> node -> station);
- ``readmission_s``: every CSMS node killed (``kill -9``) and started again: from the restart
  until every station is connected again (stations retry every 0.5 s through HAProxy);
  ``restart_to_nodes_healthy_s`` of it is the nodes' own start (process, database, NATS)
  until their health checks answer 200.

Everything shares this machine's cores (2 here): N nodes add processes, not CPU, so the per-node
costs, not the totals, are what docs/scaling.md projects from. Prints one JSON document.

    .venv/bin/python benchmarks/cluster_scale.py                    # N = 1 2 4, 400 stations
    .venv/bin/python benchmarks/cluster_scale.py --nodes 2 --stations 1000 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.doubles.waiting import eventually  # noqa: E402
from tests.integration.core.fleet.databases import pg_admin  # noqa: E402
from tests.support.cluster import ClusterStack, CoreRole  # noqa: E402
from tests.support.nats_server import NatsServer  # noqa: E402
from v2g_sim.demo_ready import wait_ready  # noqa: E402

FRAMES = "vpp_csms_frames_received_total"
PG_ADMIN_DSN = os.environ.get("V2G_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _progress(what: str) -> None:
    print(f"cluster_scale: {what}", file=sys.stderr, flush=True)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _cpu_s(role: CoreRole) -> float:
    assert role.proc is not None
    return _pid_cpu_s(role.proc.pid)


def _pid_cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _rss_kib(role: CoreRole) -> float:
    assert role.proc is not None
    return float(psutil.Process(role.proc.pid).memory_info().rss) / 1024


async def _window(
    stack: ClusterStack, duration_s: float, rss_base_kib: list[float], nats_pid: int
) -> dict[str, Any]:
    """Open-loop load for ``duration_s``: per node messages, CPU, RSS; station latencies."""
    frames0 = [await n.metric(FRAMES) or 0.0 for n in stack.csms]
    cpu0 = [_cpu_s(n) for n in stack.csms]
    coordinator = stack.coordinators[0]
    others0 = (_cpu_s(coordinator), _pid_cpu_s(nats_pid))
    marks = {sid: len(st.latencies_s) for sid, st in stack.stations.items()}
    await asyncio.sleep(duration_s)
    frames = [(await n.metric(FRAMES) or 0.0) - f for n, f in zip(stack.csms, frames0, strict=True)]
    cpu = [_cpu_s(n) - c for n, c in zip(stack.csms, cpu0, strict=True)]
    coordinator_cpu = _cpu_s(coordinator) - others0[0]
    nats_cpu = _pid_cpu_s(nats_pid) - others0[1]
    total = sum(frames)
    held = [await n.metric("vpp_csms_connections") or 0.0 for n in stack.csms]
    latencies = [x for sid, st in stack.stations.items() for x in st.latencies_s[marks[sid] :]]
    return {
        "msgs_per_s_per_node": [round(f / duration_s, 1) for f in frames],
        "cpu_ms_per_msg": [
            round(1000 * c / f, 3) if f else None for c, f in zip(cpu, frames, strict=True)
        ],
        "stations_per_node": held,
        "rss_mib_per_node": [round(_rss_kib(n) / 1024, 1) for n in stack.csms],
        # what the stations added to each node (its RSS before they connected subtracted)
        "rss_kib_per_station": [
            round((_rss_kib(n) - base) / h, 1) if h else None
            for n, base, h in zip(stack.csms, rss_base_kib, held, strict=True)
        ],
        # the fleet events of those messages: applied by the (active) coordinator, stored
        # and delivered by nats-server; per message received by the nodes
        "coordinator_cpu_ms_per_msg": round(1000 * coordinator_cpu / total, 3) if total else None,
        "nats_cpu_ms_per_msg": round(1000 * nats_cpu / total, 3) if total else None,
        "coordinator_rss_mib": round(_rss_kib(coordinator) / 1024, 1),
        "calls": len(latencies),
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 2),
    }


async def _fanout(stack: ClusterStack, api: Any, stations: int) -> float:
    for st in stack.stations.values():
        st.profile_at = None
    body = {"power_mw": stations * 4.0 / 1000, "direction": "discharge", "duration_s": 60}
    posted = time.monotonic()
    resp = await api.post("/dispatches", json=body)
    resp.raise_for_status()
    dispatch_id = resp.json()["id"]
    await eventually(
        lambda: all(st.profile_at is not None for st in stack.stations.values()),
        timeout_s=120,
        poll_s=0.02,
    )
    done = max(st.profile_at for st in stack.stations.values() if st.profile_at is not None)
    await api.delete(f"/dispatches/{dispatch_id}")
    return done - posted


async def _readmission(stack: ClusterStack) -> tuple[float, float]:
    """(s until every node is healthy again, s until every station is connected again),
    both from the restart."""
    before = {sid: st.connects for sid, st in stack.stations.items()}
    for node in stack.csms:
        node.kill()
    for node in stack.csms:
        assert node.proc is not None
        await node.proc.wait()
    restarted = time.monotonic()
    for node in stack.csms:
        await node.start()
    await stack.wait_csms_healthy(timeout_s=120)
    healthy_s = time.monotonic() - restarted
    await eventually(
        lambda: all(st.connects > before[sid] for sid, st in stack.stations.items()),
        timeout_s=300,
        poll_s=0.05,
    )
    return healthy_s, time.monotonic() - restarted


async def measure(nodes: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    name = f"cluster_bench_{uuid.uuid4().hex[:10]}"
    await pg_admin(PG_ADMIN_DSN, f'CREATE DATABASE "{name}"')
    database_url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    try:
        with NatsServer(work / f"nats-{nodes}") as nats:
            ids = [f"SC-{i:05d}" for i in range(args.stations)]
            async with ClusterStack(
                work / f"n{nodes}",
                database_url=database_url,
                nats_url=nats.url,
                station_ids=ids,
                csms_nodes=nodes,
                coordinators=1,
                meter_every_s=args.interval,
                dispatch={"resume_wait_s": 1.0},
            ) as stack:
                _progress(f"{nodes} node(s) up; connecting {args.stations} stations")
                await stack.wait_csms_healthy(timeout_s=60)
                rss_base_kib = [_rss_kib(n) for n in stack.csms]
                connected = time.monotonic()
                await stack.connect_stations(timeout_s=300)
                connect_s = time.monotonic() - connected
                active = await stack.wait_active(timeout_s=30)
                async with stack.api(active) as api:
                    await wait_ready(api, ids, timeout_s=120)
                    _progress("fleet ready; measuring the load window")
                    load = await _window(stack, args.duration, rss_base_kib, nats.pid)
                    _progress("dispatch fan-out")
                    fanout_s = await _fanout(stack, api, args.stations)
                _progress("re-admission after every node restarted")
                nodes_healthy_s, readmission_s = await _readmission(stack)
                await stack.stop_stations()
    finally:
        await pg_admin(PG_ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "nodes": nodes,
        "stations": args.stations,
        "interval_s": args.interval,
        "first_connect_s": round(connect_s, 2),
        **load,
        "fanout_s": round(fanout_s, 3),
        "restart_to_nodes_healthy_s": round(nodes_healthy_s, 2),
        "readmission_s": round(readmission_s, 2),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cluster-scale-") as tmp:
        runs = [await measure(n, args, Path(tmp)) for n in args.nodes]
    return {
        "benchmark": "cluster_scale",
        "cpus": os.cpu_count(),
        "duration_s": args.duration,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--stations", type=int, default=400)
    parser.add_argument("--interval", type=float, default=1.0, help="s between meter values")
    parser.add_argument("--duration", type=float, default=15.0, help="measuring window, s")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_run(args)), indent=2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
