"""The station's state database is made durable off the event loop (station/durability.py).

Regression of the ~2 s supervisor stall after a SetChargingProfile under load: every commit
fsynced on the event loop (``synchronous=FULL``), and one fsync under I/O load outlasted the
control loop's setpoint lease. Here the syscalls say which thread syncs: none on the loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from v2g_gateway.station.durability import StateFlusher
from v2g_gateway.station.errors import StationStateError
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.store import open_state_db, state_db_path

# What the station writes around a SetChargingProfile (the profile, the TransactionEvents of
# the tick that follows, the last contact), between two markers the trace can see.
_WORKLOAD = """
import asyncio, os, sys
from datetime import UTC, datetime
from pathlib import Path
from v2g_gateway.station.durability import StateFlusher
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.profiles import parse_profile
from v2g_gateway.station.store import ProfileStore, open_state_db, state_db_path

WIRE = {
    "id": 50, "stack_level": 50, "charging_profile_purpose": "TxProfile",
    "charging_profile_kind": "Absolute", "transaction_id": "tx-1",
    "charging_schedule": [{"id": 50, "start_schedule": "2026-12-03T20:00:00+00:00",
        "charging_rate_unit": "W", "charging_schedule_period": [
            {"start_period": 0, "operation_mode": "CentralSetpoint", "setpoint": -3000.0}]}],
}

def mark(name):
    try:
        os.open("/nonexistent-" + name, os.O_RDONLY)
    except FileNotFoundError:
        pass

async def main(state_dir):
    db = open_state_db(state_dir)
    store, journal = ProfileStore(db), TransactionJournal(db)
    # checkpoints every few writes: the WAL restarts after them must not sync on the loop
    flusher = StateFlusher(state_db_path(state_dir), checkpoint_bytes=32 * 1024)
    now = datetime.now(UTC)
    journal.begin(1, "tx-1", now)
    await flusher.flushed()
    mark("workload-start")
    for _ in range(20):
        store.install(parse_profile(WIRE, evse_id=1, received_at=now), WIRE)
        journal.enqueue(1, {"event_type": "Updated"})
        journal.put("last_csms_contact", now.isoformat())
        await flusher.flushed()
    mark("workload-end")
    flusher.close()
    db.close()

asyncio.run(main(Path(sys.argv[1])))
"""
_SYNC = re.compile(r"^(\d+)\s+(fsync|fdatasync)\(")


def _syncs_by_thread(trace: str) -> tuple[int, int]:
    """(syncs on the main thread, syncs on others) between the workload's markers."""
    lines = trace.splitlines()
    main_pid = lines[0].split()[0]
    start = next(i for i, line in enumerate(lines) if "nonexistent-workload-start" in line)
    end = next(i for i, line in enumerate(lines) if "nonexistent-workload-end" in line)
    on_main = on_others = 0
    for line in lines[start:end]:
        match = _SYNC.match(line)
        if match:
            if match.group(1) == main_pid:
                on_main += 1
            else:
                on_others += 1
    return on_main, on_others


def test_no_fsync_on_the_event_loop_while_profiles_and_events_are_written(
    tmp_path: Path,
) -> None:
    strace = shutil.which("strace")
    assert strace is not None, "strace is missing: scripts/setup installs it"
    trace = tmp_path / "trace"
    traced = [strace, "-f", "-e", "trace=fsync,fdatasync,openat", "-o", str(trace)]
    subprocess.run(
        [*traced, sys.executable, "-c", _WORKLOAD, str(tmp_path / "state")],
        check=True,
        timeout=60,
    )
    on_main, on_others = _syncs_by_thread(trace.read_text())
    assert on_main == 0, f"{on_main} fsync(s) on the event loop's thread"
    assert on_others >= 1, "the flusher thread must make the writes durable"


def test_the_loop_runs_on_while_a_flush_waits_on_the_disk(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    TransactionJournal(db).put("last_csms_contact", "2026-12-03T20:00:00+00:00")
    disk_busy = threading.Event()
    disk_free = threading.Event()

    def slow_fsync(fd: int) -> None:
        disk_busy.set()
        assert disk_free.wait(10.0)
        os.fsync(fd)

    flusher = StateFlusher(state_db_path(tmp_path), fsync=slow_fsync)

    async def scenario() -> int:
        flushes = [asyncio.ensure_future(flusher.flushed()) for _ in range(3)]
        beats = 0
        assert await asyncio.to_thread(disk_busy.wait, 10.0)
        for _ in range(5):  # the loop is free while the fsync waits
            await asyncio.sleep(0)
            beats += 1
        assert not any(f.done() for f in flushes)
        disk_free.set()
        await asyncio.wait_for(asyncio.gather(*flushes), timeout=10.0)
        return beats

    try:
        assert asyncio.run(scenario()) == 5
        # the first caller's fsync, then one shared by the two that came while it ran
        assert flusher.flushes == 2
    finally:
        disk_free.set()
        flusher.close()
        db.close()


def test_a_refused_flush_is_a_state_error(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    TransactionJournal(db).put("last_csms_contact", "2026-12-03T20:00:00+00:00")

    def broken_disk(fd: int) -> None:
        raise OSError(5, "Input/output error")

    flusher = StateFlusher(state_db_path(tmp_path), fsync=broken_disk)
    try:
        with pytest.raises(StationStateError, match="Input/output error"):
            asyncio.run(flusher.flushed())
    finally:
        flusher.close()  # logs the refused last flush, raises nothing
        db.close()


def test_a_large_wal_is_checkpointed_by_the_flusher(tmp_path: Path) -> None:
    db = open_state_db(tmp_path)
    journal = TransactionJournal(db)
    flusher = StateFlusher(state_db_path(tmp_path), checkpoint_bytes=64 * 1024)
    wal = Path(f"{state_db_path(tmp_path)}-wal")
    try:
        for i in range(40):
            journal.put(f"k{i}", "x" * 4000)
        size_before = wal.stat().st_size
        asyncio.run(flusher.flushed())
        journal.put("after", "y")  # checkpointed: the WAL starts again from the front
        assert wal.stat().st_size == size_before
    finally:
        flusher.close()
        db.close()
