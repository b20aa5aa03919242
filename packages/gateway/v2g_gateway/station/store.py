"""The station's durable state in one SQLite file under the state directory: installed charging
profiles, the TransactionEvent outbox, running transactions, the last CSMS contact, and the
device-model values and availability the CSMS set.

Every write commits before the caller goes on, so a crash of the process loses nothing. The
commits do not fsync (``synchronous=NORMAL`` in WAL mode, no automatic checkpoint): they run
on the supervisor's event loop, where an fsync under I/O load stalled the station for seconds.
:class:`~v2g_gateway.station.durability.StateFlusher` makes them durable in its own thread,
and the station awaits it before it answers ``Accepted`` for a profile or sends a queued
event, so what the CSMS was told survives a power cut too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from v2g_gateway.station.errors import ProfileRejected, StationStateError
from v2g_gateway.station.profiles import (
    PERIOD_POWER_KEYS,
    ChargingProfile,
    parse_datetime,
    parse_profile,
)

__all__ = [
    "ProfileStore",
    "StoredProfile",
    "WrittenVariables",
    "open_state_db",
    "read_installed_profiles",
    "state_db_path",
]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    id INTEGER PRIMARY KEY, evse_id INTEGER NOT NULL, stack_level INTEGER NOT NULL,
    purpose TEXT NOT NULL, transaction_id TEXT, wire TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    evse_id INTEGER PRIMARY KEY, transaction_id TEXT NOT NULL, started_at TEXT NOT NULL,
    next_seq_no INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# UpdateDynamicSchedule may set every power value of a period, reactive ones included.
_UPDATE_KEYS = (
    *PERIOD_POWER_KEYS,
    "setpoint_reactive",
    "setpoint_reactive_l2",
    "setpoint_reactive_l3",
)


def state_db_path(state_dir: Path) -> Path:
    return state_dir / "station.sqlite3"


def open_state_db(state_dir: Path) -> sqlite3.Connection:
    """Open (creating) ``state_dir/station.sqlite3``; refuse a file from a newer version."""
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(state_db_path(state_dir), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # durable through StateFlusher, off the loop
        db.execute("PRAGMA wal_autocheckpoint=0")  # StateFlusher checkpoints, off the loop
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StationStateError(f"state database version {version} is newer than this code")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.DatabaseError as exc:
        raise StationStateError(f"state database in {state_dir} is unusable: {exc}") from exc
    return db


def read_installed_profiles(state_dir: Path) -> list[StoredProfile]:
    """The profiles installed in a station's state directory, read without writing (the
    station's process may own the file); none if the station never stored any."""
    db_path = state_dir / "station.sqlite3"
    if not db_path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        raise StationStateError(f"state database in {state_dir} is unreadable: {exc}") from exc
    try:
        return ProfileStore(db).all()
    finally:
        db.close()


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """An installed profile: the domain value and the snake_case wire dict it came from."""

    profile: ChargingProfile
    wire: Mapping[str, Any]


class ProfileStore:
    """Installed charging profiles, replaced by id and by (EVSE, stackLevel, purpose)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._cache: list[StoredProfile] | None = None

    def all(self) -> list[StoredProfile]:
        if self._cache is None:
            rows = self._db.execute(
                "SELECT wire, evse_id, received_at FROM profiles ORDER BY id"
            ).fetchall()
            self._cache = [self._load(wire, evse_id, at) for wire, evse_id, at in rows]
        return list(self._cache)

    def profiles(self) -> list[ChargingProfile]:
        return [s.profile for s in self.all()]

    def install(self, profile: ChargingProfile, wire: Mapping[str, Any]) -> None:
        """Store ``profile``, replacing one with the same id, or the same stackLevel and
        purpose on the same EVSE (for TxProfiles: of the same transaction)."""
        stored = dict(wire)
        if profile.transaction_id is not None:
            stored["transaction_id"] = profile.transaction_id
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM profiles WHERE id = ?", (profile.id,))
            self._db.execute(
                "DELETE FROM profiles WHERE evse_id = ? AND stack_level = ? AND purpose = ?"
                " AND coalesce(transaction_id, '') = ?",
                (
                    profile.evse_id,
                    profile.stack_level,
                    profile.purpose,
                    profile.transaction_id or "",
                ),
            )
            self._db.execute(
                "INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    profile.id,
                    profile.evse_id,
                    profile.stack_level,
                    profile.purpose,
                    profile.transaction_id,
                    json.dumps(stored),
                    _received(profile).isoformat(),
                ),
            )
        self._cache = None

    def clear(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Remove by id, or by every given criterion; returns how many were removed."""
        args: list[int | str] = []
        if profile_id is not None:
            where, args = "id = ?", [profile_id]
        else:
            clauses: list[str] = []
            for column, value in (
                ("evse_id", evse_id),
                ("purpose", purpose),
                ("stack_level", stack_level),
            ):
                if value is not None:
                    clauses.append(f"{column} = ?")
                    args.append(value)
            # With no criteria at all every profile except external constraints goes.
            where = " AND ".join(clauses) or "1"
            where += " AND purpose != 'ChargingStationExternalConstraints'"
        with self._db:
            removed = self._db.execute(f"DELETE FROM profiles WHERE {where}", args).rowcount
        self._cache = None
        return removed

    def remove_transaction(self, transaction_id: str) -> int:
        """Drop the TxProfiles of a transaction that ended."""
        with self._db:
            removed = self._db.execute(
                "DELETE FROM profiles WHERE purpose = 'TxProfile' AND transaction_id = ?",
                (transaction_id,),
            ).rowcount
        self._cache = None
        return removed

    def updated_dynamic_wire(
        self, profile_id: int, update: Mapping[str, Any]
    ) -> tuple[StoredProfile, dict[str, Any]]:
        """The stored Dynamic profile and its wire dict with ``update``'s values applied to
        its (single) period. The caller validates and re-installs it."""
        for stored in self.all():
            if stored.profile.id == profile_id:
                break
        else:
            raise ProfileRejected("UnknownProfile", f"no charging profile {profile_id}")
        if stored.profile.kind != "Dynamic":
            raise ProfileRejected("InvalidProfile", f"profile {profile_id} is not Dynamic")
        wire = json.loads(json.dumps(stored.wire))
        period = wire["charging_schedule"][0]["charging_schedule_period"][0]
        for key in _UPDATE_KEYS:
            if update.get(key) is not None:
                period[key] = update[key]
        return stored, wire

    @staticmethod
    def _load(wire: str, evse_id: int, received_at: str) -> StoredProfile:
        data = json.loads(wire)
        profile = parse_profile(data, evse_id=evse_id, received_at=parse_datetime(received_at))
        return StoredProfile(profile, data)


def _received(profile: ChargingProfile) -> datetime:
    if profile.received_at is None:
        raise ValueError("a profile to install needs received_at")
    return profile.received_at


class WrittenVariables:
    """Device-model values the CSMS wrote (``kv`` rows keyed ``dm:<variable>``)."""

    _PREFIX = "dm:"

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def load(self) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT key, value FROM kv WHERE substr(key, 1, 3) = ?", (self._PREFIX,)
        ).fetchall()
        return {str(key)[len(self._PREFIX) :]: str(value) for key, value in rows}

    def save(self, name: str, value: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)", (self._PREFIX + name, value)
            )
