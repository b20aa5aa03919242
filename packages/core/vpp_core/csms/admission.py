"""Password logins of security-profile-1/2 stations, fast enough for a reconnect storm.

* A hash in the current scheme (HMAC-SHA256, microseconds) is checked on the event loop: a
  hop to a thread would cost more than the check.
* A row in the old scheme (scrypt, ~55 ms) is checked in a small thread pool; at most
  ``queue_max`` such checks wait, more are refused with 503 and a ``Retry-After``. Once it
  verifies, the row is rewritten in the current scheme (only if it is still the row that was
  checked: a password changed meanwhile wins), so the next restart admits it in microseconds.
* A verified password is remembered as an HMAC under a key that lives only in this process
  (never stored), with the stored hash it was checked against; a reconnect with the same
  password and an unchanged row skips the check, a different password never matches.

docs/admission.md: the choice of hash, what the database gives an attacker, the figures.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Protocol

from vpp_core.fleet.errors import FleetError
from vpp_core.fleet.model import StationEntry
from vpp_core.fleet.registry import hash_password, is_slow, needs_rehash, verify_password

__all__ = ["PasswordCheck", "PasswordLogins", "PasswordRehashStore"]

log = logging.getLogger(__name__)


class PasswordRehashStore(Protocol):
    """Where an old-scheme hash is replaced (the fleet store)."""

    async def replace_password_hash(self, station_id: str, *, old: str, new: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The outcome of one login: admitted (``status`` None) or refused, and why."""

    status: HTTPStatus | None
    reason: str
    #: Seconds the station should wait before trying again (with 503 only).
    retry_after_s: int | None = None
    #: The registry entry with its password rehashed, when that happened.
    rehashed: StationEntry | None = None


class PasswordLogins:
    """Checks a station's Basic-auth password against its registry entry."""

    def __init__(
        self,
        *,
        workers: int = 1,
        queue_max: int = 2000,
        retry_after_s: int = 10,
        rehash_store: PasswordRehashStore | None = None,
        on_rehash: Callable[[str], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csms-auth")
        self._queue_max = queue_max
        self._waiting = 0
        self._retry_after_s = retry_after_s
        self._store = rehash_store
        self._on_rehash = on_rehash or (lambda _result: None)
        self._rng = rng or random.Random()
        self._key = os.urandom(32)
        self._verified: dict[str, tuple[str, bytes]] = {}  # identity -> (stored hash, HMAC)
        self._rehash_failing = False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, entry: StationEntry, password: str) -> PasswordCheck:
        stored = entry.password_hash
        assert stored is not None
        if self._remembered(entry.station_id, stored, password):
            return PasswordCheck(None, "password (remembered)")
        if not is_slow(stored):
            ok = verify_password(password, stored)
        elif self._waiting >= self._queue_max:
            return PasswordCheck(
                HTTPStatus.SERVICE_UNAVAILABLE, "too many logins at once", self._retry_after()
            )
        else:
            ok = await self._verify_in_pool(password, stored)
        if not ok:
            return PasswordCheck(HTTPStatus.UNAUTHORIZED, "wrong password")
        self._verified[entry.station_id] = (stored, self._mac(password))
        if needs_rehash(stored):
            return PasswordCheck(None, "password", rehashed=await self._rehash(entry, password))
        return PasswordCheck(None, "password")

    def _retry_after(self) -> int:
        """``retry_after_s`` to twice that, at random: refused stations come back spread out."""
        base = self._retry_after_s
        return base + self._rng.randint(0, base)

    async def _verify_in_pool(self, password: str, stored: str) -> bool:
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, verify_password, password, stored)
        finally:
            self._waiting -= 1

    async def _rehash(self, entry: StationEntry, password: str) -> StationEntry | None:
        """Store ``password`` in the current scheme; the entry to use from now on, or None
        if not stored (no store, changed meanwhile, or the store failed: logged, counted;
        the station is admitted all the same, its password having verified)."""
        if self._store is None or entry.password_hash is None:
            return None
        new = hash_password(password)
        try:
            stored = await self._store.replace_password_hash(
                entry.station_id, old=entry.password_hash, new=new
            )
        except FleetError as exc:
            self._on_rehash("failed")
            if not self._rehash_failing:
                log.error("cannot store the rehashed password of %s: %s", entry.station_id, exc)
            self._rehash_failing = True
            return None
        self._rehash_failing = False
        self._on_rehash("stored" if stored else "changed_meanwhile")
        if not stored:
            return None
        self._verified[entry.station_id] = (new, self._mac(password))
        return replace(entry, password_hash=new)

    def _mac(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()

    def _remembered(self, identity: str, stored: str, password: str) -> bool:
        known = self._verified.get(identity)
        return (
            known is not None
            and known[0] == stored
            and hmac.compare_digest(known[1], self._mac(password))
        )
