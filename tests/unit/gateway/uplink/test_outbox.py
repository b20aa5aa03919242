"""The on-disk outbox: seq survives reopening, order, the bound and what it drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from v2g_gateway.uplink import Outbox, OutboxError


def render(seq: int) -> tuple[str, bytes]:
    return "t", f"m{seq}".encode()


def open_outbox(path: Path, *, max_messages: int = 100, site: str = "site-a") -> Outbox:
    return Outbox.open(path, site=site, max_messages=max_messages, durable=False)


def test_seq_is_strictly_increasing_across_acks_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = open_outbox(path)
    seqs = [box.append("summary", render)[0] for _ in range(3)]
    stream = box.stream
    for seq in seqs:
        box.remove(seq)  # all acknowledged: the table is empty ...
    box.close()
    box = open_outbox(path)
    # ... yet numbering goes on, in the same stream
    assert seqs == [1, 2, 3]
    assert box.append("event", render)[0] == 4
    assert box.stream == stream


def test_pending_is_in_seq_order_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = open_outbox(path)
    for kind in ("summary", "event", "summary", "summary"):
        box.append(kind, render)
    box.remove(2)
    box.close()
    box = open_outbox(path)
    entries = box.pending(after_seq=0, limit=10)
    assert [(e.seq, e.kind, e.payload) for e in entries] == [
        (1, "summary", b"m1"),
        (3, "summary", b"m3"),
        (4, "summary", b"m4"),
    ]
    assert [e.seq for e in box.pending(after_seq=1, limit=1)] == [3]
    assert len(box) == 3


def test_another_sites_outbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    open_outbox(path).close()
    with pytest.raises(OutboxError, match="site-a"):
        open_outbox(path, site="site-b")


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError):
        open_outbox(path)


def test_full_outbox_drops_oldest_summaries_in_a_batch_never_events(tmp_path: Path) -> None:
    box = open_outbox(tmp_path / "o.sqlite3", max_messages=20)
    kinds = ["event" if i % 4 == 0 else "summary" for i in range(20)]
    for kind in kinds:
        assert box.append(kind, render)[1] is None  # type: ignore[arg-type]
    seq, dropped = box.append("summary", render)
    assert dropped is not None
    # a tenth of the capacity (2), the oldest summaries, never the events 1, 5, 9 ...
    assert dropped.seqs == (2, 3)
    left = [e.seq for e in box.pending(after_seq=0, limit=100)]
    assert {1, 5, 9, 13, 17, seq} <= set(left)
    assert len(box) == 19


def test_summaries_in_flight_are_not_dropped(tmp_path: Path) -> None:
    box = open_outbox(tmp_path / "o.sqlite3", max_messages=10)
    for _ in range(10):
        box.append("summary", render)
    _, dropped = box.append("summary", render, keep={1, 2})
    assert dropped is not None
    assert dropped.seqs == (3,)


def test_outbox_full_of_events_takes_events_but_drops_the_new_summary(tmp_path: Path) -> None:
    box = open_outbox(tmp_path / "o.sqlite3", max_messages=10)
    for _ in range(10):
        box.append("event", render)
    seq, dropped = box.append("event", render)
    assert dropped is None
    assert len(box) == 11  # events are never dropped, even past the bound
    seq, dropped = box.append("summary", render)
    assert dropped is not None
    assert dropped.seqs == (seq,)
    assert seq not in [e.seq for e in box.pending(after_seq=0, limit=100)]


def test_rewrite_only_touches_a_stored_message(tmp_path: Path) -> None:
    box = open_outbox(tmp_path / "o.sqlite3")
    seq, _ = box.append("event", render)
    assert box.rewrite(seq, b"new")
    assert box.pending(after_seq=0, limit=1)[0].payload == b"new"
    box.remove(seq)
    assert not box.rewrite(seq, b"newer")
