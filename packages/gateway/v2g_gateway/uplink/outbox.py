"""The uplink's store-and-forward outbox: one SQLite file per site.

Every message is written here before it is handed to MQTT and deleted only when the broker
acknowledges it, so neither a broker outage nor a daemon restart loses one. ``seq`` comes
from here: one strictly increasing counter per file (``stream``), kept in ``meta`` so that
deleting acknowledged rows never lets a number come back.

Bounded: at ``max_messages`` the oldest summaries not in flight are dropped, a tenth of the
capacity at a time (one drop report per batch, not one per message); events are never
dropped, even past the bound. A summary that finds the outbox full of events is dropped
itself.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from v2g_common.telemetry import MessageKind
from v2g_gateway.uplink.errors import OutboxError

__all__ = ["DroppedSummaries", "Outbox", "OutboxEntry", "Render"]

SCHEMA_VERSION = 1
#: Builds a message once its ``seq`` is known: ``seq -> (topic, payload)``.
Render = Callable[[int], tuple[str, bytes]]

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
    " topic TEXT NOT NULL, payload BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outbox_kind_seq ON outbox (kind, seq)",
)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    seq: int
    kind: MessageKind
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class DroppedSummaries:
    """Summaries removed unsent to keep the outbox bounded (``seqs`` in order)."""

    seqs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.seqs)


class Outbox:
    """Open with :meth:`open`; not thread-safe (the uplink uses it from its event loop)."""

    def __init__(self, conn: sqlite3.Connection, *, stream: str, max_messages: int) -> None:
        self._conn = conn
        self.stream = stream
        self.max_messages = max_messages
        self._count = int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    @classmethod
    def open(cls, path: Path, *, site: str, max_messages: int, durable: bool = True) -> Outbox:
        """Open or create ``path`` for ``site``; raise :class:`OutboxError` if it is unusable
        or belongs to another site."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            with _transaction(conn):
                for ddl in _DDL:
                    conn.execute(ddl)
                meta = _init_meta(conn, site)
        except sqlite3.Error as exc:
            raise OutboxError(f"{path}: {exc}") from exc
        if meta["site"] != site:
            conn.close()
            raise OutboxError(f"{path} is the outbox of site {meta['site']!r}, not {site!r}")
        if meta["schema_version"] != str(SCHEMA_VERSION):
            conn.close()
            raise OutboxError(f"{path}: schema version {meta['schema_version']} unsupported")
        return cls(conn, stream=meta["stream"], max_messages=max_messages)

    def __len__(self) -> int:
        return self._count

    def append(
        self, kind: MessageKind, render: Render, *, keep: Collection[int] = ()
    ) -> tuple[int, DroppedSummaries | None]:
        """Store one message, dropping old summaries (never those in ``keep``) when full.

        Returns its ``seq`` and what was dropped; a summary that could not be stored is
        reported as dropped under its own ``seq``.
        """
        try:
            with _transaction(self._conn):
                seq = self._next_seq()
                dropped = self._make_room(keep) if self._count >= self.max_messages else ()
                full = self._count - len(dropped) >= self.max_messages
                stored = not (kind == "summary" and full)
                if stored:
                    topic, payload = render(seq)
                    self._conn.execute(
                        "INSERT INTO outbox (seq, kind, topic, payload) VALUES (?, ?, ?, ?)",
                        (seq, kind, topic, payload),
                    )
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox write failed: {exc}") from exc
        self._count += int(stored) - len(dropped)
        if not stored:
            dropped = (*dropped, seq)
        return seq, DroppedSummaries(dropped) if dropped else None

    def pending(self, *, after_seq: int, limit: int) -> list[OutboxEntry]:
        """Unacknowledged messages after ``after_seq``, oldest first."""
        rows = self._conn.execute(
            "SELECT seq, kind, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [OutboxEntry(seq, kind, topic, bytes(payload)) for seq, kind, topic, payload in rows]

    def remove(self, seq: int) -> None:
        """Forget ``seq`` (the broker acknowledged it); unknown seqs are ignored."""
        try:
            with _transaction(self._conn):
                cur = self._conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox delete failed: {exc}") from exc
        self._count -= cur.rowcount

    def rewrite(self, seq: int, payload: bytes) -> bool:
        """Replace the payload of a stored, unsent message; ``False`` if it is gone."""
        with _transaction(self._conn):
            cur = self._conn.execute("UPDATE outbox SET payload = ? WHERE seq = ?", (payload, seq))
        return cur.rowcount == 1

    def close(self) -> None:
        self._conn.close()

    def _next_seq(self) -> int:
        seq = int(self._conn.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])
        self._conn.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(seq + 1),))
        return seq

    def _make_room(self, keep: Collection[int]) -> tuple[int, ...]:
        batch = max(self._count - self.max_messages + 1, self.max_messages // 10, 1)
        rows = self._conn.execute(
            "SELECT seq FROM outbox WHERE kind = 'summary' ORDER BY seq LIMIT ?",
            (batch + len(keep),),
        ).fetchall()
        victims = tuple(seq for (seq,) in rows if seq not in keep)[:batch]
        self._conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in victims])
        return victims


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT / ROLLBACK on a connection in autocommit mode."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _init_meta(conn: sqlite3.Connection, site: str) -> dict[str, str]:
    defaults = {
        "site": site,
        "stream": secrets.token_hex(8),
        "next_seq": "1",
        "schema_version": str(SCHEMA_VERSION),
    }
    conn.executemany(
        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", list(defaults.items())
    )
    return {k: v for k, v in conn.execute("SELECT key, value FROM meta").fetchall()}
