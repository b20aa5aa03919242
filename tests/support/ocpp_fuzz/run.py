"""One fuzz run against a running ``vpp-core`` (:class:`~tests.support.core_process.CoreProcess`):
fuzzing connections and a bystander at once, the database counted before, during and after.
Returns the figures ``benchmarks/ocpp_fuzz.py`` prints and the test asserts on."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.doubles.waiting import eventually_async
from tests.support.core_process import CoreProcess, StationAccount
from tests.support.ocpp_fuzz.drive import Bystander, FuzzStation, FuzzTally
from tests.support.ocpp_fuzz.frames import FrameFuzzer
from v2g_common.pki import client_context, provision
from vpp_core.fleet import FleetStore, schema

__all__ = ["BYSTANDER", "FuzzResult", "fuzz_accounts", "run_fuzz"]

BYSTANDER = "BYSTANDER"
TABLES = ("sessions", "session_samples", "command_log", "write_quarantine")
#: The core's settings for a fuzz run: the per-station throttle opened (the fuzz tests
#: robustness, not throttling) and the profile survey quick, so the core sends CALLs to the
#: fuzzing stations and gets their fuzzed CALLRESULTs.
CORE_OVERRIDES = {
    "csms": {"max_messages_per_s": 5000.0, "message_burst": 5000},
    "dispatch": {"profile_survey_interval_s": 0.2},
}


def fuzz_accounts(connections: int) -> list[StationAccount]:
    """The stations a fuzz run uses (security profile 3), to register before the core starts."""
    return [StationAccount(f"FUZZ-{n}", 3) for n in range(connections)] + [
        StationAccount(BYSTANDER, 3)
    ]


@dataclass
class FuzzResult:
    frames_sent: int
    frames_by_kind: dict[str, int]
    #: payload mutations by class (in CALLs and in the CALLRESULTs answering the core)
    payload_mutations: dict[str, int]
    answers: dict[str, int]
    connection_closes: dict[str, int]
    csms_calls_answered: dict[str, int]
    violations: list[str]
    core_alive: bool
    bystander_round_trips: int
    bystander_round_trip_ms: dict[str, float]
    bystander_failures: list[str]
    bystander_rows_during: list[int]
    bystander_rows_after: int
    bystander_samples_sent: int
    rows_before: dict[str, int]
    rows_after: dict[str, int]
    elapsed_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _percentiles_ms(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1e3, 2)

    return {"p50": at(0.50), "p99": at(0.99), "max": round(ordered[-1] * 1e3, 2)}


async def _counts(store: FleetStore) -> dict[str, int]:
    known = schema.metadata.tables  # (an older core has no write_quarantine)
    return {t: await store.table_count(t) for t in TABLES if t in known}


async def run_fuzz(
    core: CoreProcess,
    *,
    frames: int,
    connections: int = 4,
    seed: int = 1,
    bystander_interval_s: float = 0.05,
    checkpoint_s: float = 1.0,
) -> FuzzResult:
    """Send ``frames`` fuzz frames over ``connections`` (seeded), with a bystander."""
    pki = core.pki
    ids = [a.identity for a in fuzz_accounts(connections)]
    missing = [i for i in ids if not pki.client_cert(i).exists()]
    if missing:
        await asyncio.to_thread(provision, pki.root, clients=missing)

    def ssl_for(identity: str) -> Any:
        return client_context(
            pki.ca_cert, cert=pki.client_cert(identity), key=pki.client_key(identity)
        )

    store = await FleetStore.open(core.database_url)
    try:
        return await _run(core, store, ssl_for, frames, connections, seed, bystander_interval_s,
                          checkpoint_s)  # fmt: skip
    finally:
        await store.close()


async def _run(
    core: CoreProcess,
    store: FleetStore,
    ssl_for: Any,
    frames: int,
    connections: int,
    seed: int,
    interval_s: float,
    checkpoint_s: float,
) -> FuzzResult:
    before = await _counts(store)
    tally = FuzzTally()
    stations = _fuzz_stations(core, ssl_for, tally, connections=connections, seed=seed)
    share = [frames // connections + (n < frames % connections) for n in range(connections)]
    bystander = Bystander(core.csms_url, BYSTANDER, ssl_for, interval_s=interval_s)
    during: list[int] = []
    started = time.perf_counter()
    by_task = asyncio.create_task(bystander.run(), name="bystander")
    watch = asyncio.create_task(_watch(store, bystander, during, checkpoint_s), name="db-watch")
    try:
        await asyncio.gather(*(s.run(count) for s, count in zip(stations, share, strict=True)))
    finally:
        bystander.stop.set()
        await by_task
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    elapsed_s = time.perf_counter() - started
    after_rows = await _bystander_rows_settled(store, bystander)
    return FuzzResult(
        frames_sent=tally.frames,
        frames_by_kind=dict(tally.sent),
        payload_mutations=dict(sum((s.fuzzer.mutations for s in stations), Counter())),
        answers=dict(tally.answers),
        connection_closes=dict(tally.closes),
        csms_calls_answered=dict(tally.csms_calls),
        violations=tally.violations,
        core_alive=core.returncode is None,
        bystander_round_trips=len(bystander.round_trips_s),
        bystander_round_trip_ms=_percentiles_ms(bystander.round_trips_s),
        bystander_failures=bystander.failures,
        bystander_rows_during=during,
        bystander_rows_after=after_rows,
        bystander_samples_sent=bystander.samples_sent,
        rows_before=before,
        rows_after=await _counts(store),
        elapsed_s=round(elapsed_s, 2),
    )


def _fuzz_stations(
    core: CoreProcess, ssl_for: Any, tally: FuzzTally, *, connections: int, seed: int
) -> list[FuzzStation]:
    """One fuzzing station per connection, each with its own seeded frames."""
    return [
        FuzzStation(
            core.csms_url,
            f"FUZZ-{n}",
            ssl_for,
            FrameFuzzer(
                seed * 1000 + n,
                prefix=f"f{n}",
                tx_id=f"fuzz-tx-{n}",
                max_frame_bytes=core.max_frame_bytes,
            ),
            tally,
        )
        for n in range(connections)
    ]


async def _bystander_rows(store: FleetStore, bystander: Bystander) -> int:
    return len(await store.samples(BYSTANDER, bystander.transaction_id))


async def _watch(store: FleetStore, bystander: Bystander, out: list[int], every_s: float) -> None:
    """The bystander's rows in the database, every ``every_s`` while the fuzz runs."""
    while True:
        await asyncio.sleep(every_s)
        out.append(await _bystander_rows(store, bystander))


async def _bystander_rows_settled(
    store: FleetStore, bystander: Bystander, timeout_s: float = 15.0
) -> int:
    """Its rows once everything it sent was written (or what is there after the timeout)."""

    async def all_written() -> bool:
        return await _bystander_rows(store, bystander) >= bystander.samples_sent

    with contextlib.suppress(TimeoutError):
        await eventually_async(all_written, timeout_s=timeout_s, poll_s=0.1)
    return await _bystander_rows(store, bystander)
