"""Salvaging a refused batch (bisection) and the write-behind queue's bound, without a database:
``write`` is a table-driven double that refuses given rows or goes down after n writes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from vpp_core.fleet.pending import PendingWrites
from vpp_core.fleet.salvage import Item, salvage


class Database:
    """Refuses any write containing a poison row; unreachable after ``up_for`` writes."""

    def __init__(self, poison: set[int], *, up_for: int | None = None) -> None:
        self.poison = poison
        self.up_for = up_for
        self.stored: list[int] = []
        self.transactions = 0

    async def write(self, items: Sequence[Item]) -> None:
        self.transactions += 1
        if self.up_for is not None and self.transactions > self.up_for:
            raise ConnectionError("database went away")
        bad = [i for _f, row in items if (i := row["n"]) in self.poison]
        if bad:
            raise OverflowError(f"row {bad[0]} does not fit")
        self.stored.extend(row["n"] for _f, row in items)

    async def transient(self, exc: BaseException) -> bool:
        return isinstance(exc, ConnectionError)


def items(n: int) -> list[Item]:
    return [("samples", {"n": i}) for i in range(n)]


@pytest.mark.parametrize(
    ("n", "poison"), [(1, {0}), (2, {1}), (100, {0}), (100, {37}), (100, {3, 4, 99}), (7, set())]
)
async def test_good_rows_land_and_only_poison_is_refused(n: int, poison: set[int]) -> None:
    db = Database(poison)
    outcome = await salvage(
        items(n), OverflowError("batch failed"), write=db.write, transient=db.transient
    )
    assert sorted(db.stored) == sorted(set(range(n)) - poison)
    assert outcome.written == n - len(poison)
    assert sorted(r.item[1]["n"] for r in outcome.refused) == sorted(poison)
    assert all(r.reason.startswith("OverflowError: ") for r in outcome.refused)
    assert outcome.unwritten == []
    # bisection: about 2 * k * log2(n) transactions, not n
    assert db.transactions <= 2 * max(1, len(poison)) * max(1, n.bit_length())


async def test_database_going_away_hands_back_what_was_not_written() -> None:
    db = Database({10}, up_for=3)
    outcome = await salvage(items(64), OverflowError("x"), write=db.write, transient=db.transient)
    left = sorted(row["n"] for _f, row in outcome.unwritten)
    assert sorted(db.stored + left + [r.item[1]["n"] for r in outcome.refused]) == list(range(64))
    assert not set(db.stored) & set(left)
    assert all(r.item[1]["n"] == 10 for r in outcome.refused)  # nothing refused for an outage
    assert left


def test_merged_back_rows_stay_within_the_bound_dropping_samples_first() -> None:
    failed = PendingWrites()
    failed.samples.extend({"n": i} for i in range(800))
    failed.commands.extend({"c": i} for i in range(300))
    failed.profiles.extend({"p": i} for i in range(100))
    failed.touch()
    queue = PendingWrites()
    queue.samples.extend({"n": 1000 + i} for i in range(200))
    queue.merge_back(failed, max_queued_rows=1000)
    assert len(queue.samples) + len(queue.commands) + len(queue.profiles) == 1000
    assert len(queue.commands) == 300  # command results kept: samples went first
    assert len(queue.profiles) == 100
    assert queue.samples[0] == {"n": 400}  # the oldest were dropped
    assert queue.samples[-1] == {"n": 1199}  # newer changes kept after the merged-back ones
    assert queue.dropped == {"samples": 400}


def test_commands_are_dropped_only_when_nothing_else_is_left() -> None:
    failed = PendingWrites()
    failed.commands.extend({"c": i} for i in range(1200))
    failed.profiles.extend({"p": i} for i in range(100))
    queue = PendingWrites()
    queue.merge_back(failed, max_queued_rows=1000)
    assert queue.profiles == []
    assert [c["c"] for c in queue.commands] == list(range(200, 1200))
    assert queue.dropped == {"profiles": 100, "commands": 200}
