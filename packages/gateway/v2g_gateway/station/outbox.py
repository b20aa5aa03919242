"""TransactionEvents on their way to the CSMS, and the running transactions they belong to.

Every event is written to the SQLite outbox, in the same database transaction that advances
its transaction's ``seqNo``, *before* anything tries to send it; a sender removes it only after
the CSMS's CALLRESULT. So events are delivered in order, survive a restart, and seqNo has no
gaps. Delivery is at-least-once: a CALLRESULT lost with the link means the event is sent again
(the CSMS recognises it by transactionId + seqNo).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from v2g_gateway.station.profiles import parse_datetime

__all__ = ["QueuedEvent", "TransactionJournal", "TransactionRecord"]


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    evse_id: int
    transaction_id: str
    started_at: datetime
    next_seq_no: int


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    position: int
    payload: dict[str, Any]


class TransactionJournal:
    """Running transactions and the outbox of their events."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def running(self) -> dict[int, TransactionRecord]:
        rows = self._db.execute(
            "SELECT evse_id, transaction_id, started_at, next_seq_no FROM transactions"
        ).fetchall()
        return {
            evse: TransactionRecord(evse, tx, parse_datetime(started), seq)
            for evse, tx, started, seq in rows
        }

    def begin(self, evse_id: int, transaction_id: str, started_at: datetime) -> TransactionRecord:
        with self._db:
            self._db.execute(
                "INSERT INTO transactions VALUES (?, ?, ?, 0)",
                (evse_id, transaction_id, started_at.isoformat()),
            )
        return TransactionRecord(evse_id, transaction_id, started_at, 0)

    def enqueue(self, evse_id: int, payload: dict[str, Any], *, ends: bool = False) -> int:
        """Give ``payload`` the transaction's next seqNo and queue it; with ``ends`` the
        transaction is closed in the same commit. Returns the seqNo used."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT next_seq_no FROM transactions WHERE evse_id = ?", (evse_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no transaction on EVSE {evse_id}")
            seq_no = int(row[0])
            queued = {**payload, "seq_no": seq_no}
            self._db.execute("INSERT INTO outbox (payload) VALUES (?)", (json.dumps(queued),))
            if ends:
                self._db.execute("DELETE FROM transactions WHERE evse_id = ?", (evse_id,))
            else:
                self._db.execute(
                    "UPDATE transactions SET next_seq_no = ? WHERE evse_id = ?",
                    (seq_no + 1, evse_id),
                )
        return seq_no

    def peek(self) -> QueuedEvent | None:
        row = self._db.execute(
            "SELECT position, payload FROM outbox ORDER BY position LIMIT 1"
        ).fetchone()
        return None if row is None else QueuedEvent(int(row[0]), json.loads(row[1]))

    def ack(self, position: int) -> None:
        with self._db:
            self._db.execute("DELETE FROM outbox WHERE position = ?", (position,))

    def pending(self, transaction_id: str | None = None) -> int:
        """Events not yet acknowledged (of one transaction, when given)."""
        if transaction_id is None:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        row = self._db.execute(
            "SELECT count(*) FROM outbox"
            " WHERE json_extract(payload, '$.transaction_info.transaction_id') = ?",
            (transaction_id,),
        ).fetchone()
        return int(row[0])

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))
