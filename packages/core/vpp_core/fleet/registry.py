"""The station registry: who may connect, how, and where it sits (site, region).

Basic-auth passwords are stored as ``hmac-sha256$<salt b64>$<digest b64>`` (HMAC-SHA256 of
the password keyed by a 16-byte random salt): a fast hash, chosen for what station passwords
are. They are machine-made (:func:`new_password`: 144 random bits; a CSMS sets them through
``BasicAuthPassword``), not remembered by people, so a slow KDF buys no margin against an
offline guess (2^143 hashes on average either way) while it made every login after a restart
cost ~55 ms of CPU. What holding the database gives an attacker: docs/admission.md.

Rows written before (``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``) still verify; the CSMS
rewrites one in the fast scheme at the station's next login (:func:`needs_rehash`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from datetime import datetime

from vpp_core.fleet.errors import RegistryError
from vpp_core.fleet.model import StationEntry
from vpp_core.fleet.store import FleetStore

__all__ = [
    "MIN_PASSWORD_LEN",
    "StationRegistry",
    "check_station_identity",
    "hash_password",
    "is_slow",
    "legacy_scrypt_hash",
    "needs_rehash",
    "verify_password",
]

#: OCPP 2.x: the Basic-auth password of a station is at least 16 characters.
MIN_PASSWORD_LEN = 16
MAX_IDENTITY_LEN = 48
#: The scheme :func:`hash_password` writes; rows in any other need a rehash.
SCHEME = "hmac-sha256"
_FORBIDDEN = frozenset(':/#+ "\\?%')


def check_station_identity(identity: str) -> str:
    """``identity`` if it can be a station identity (URL path, Basic user, certificate CN)."""
    if not identity or len(identity) > MAX_IDENTITY_LEN:
        raise RegistryError(
            f"station identity {identity!r}: must be 1..{MAX_IDENTITY_LEN} characters"
        )
    if set(identity) & _FORBIDDEN or not identity.isprintable() or not identity.isascii():
        raise RegistryError(f"station identity {identity!r}: forbidden characters")
    return identity


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A storable hash of ``password`` (which must be >= 16 characters): microseconds."""
    if len(password) < MIN_PASSWORD_LEN:
        raise RegistryError(f"password must be at least {MIN_PASSWORD_LEN} characters")
    salt = os.urandom(16)
    return f"{SCHEME}${_b64(salt)}${_b64(_hmac_sha256(password, salt))}"


def legacy_scrypt_hash(password: str, *, log2_n: int = 14, r: int = 8, p: int = 1) -> str:
    """The scheme stored before: scrypt (log2 N 14: ~55 ms per check). Kept to verify old
    rows and to test their migration; nothing new is stored this way."""
    salt = os.urandom(16)
    digest = _scrypt(password, salt, log2_n, r, p)
    return f"scrypt${log2_n}${r}${p}${_b64(salt)}${_b64(digest)}"


def needs_rehash(stored: str) -> bool:
    """True if ``stored`` is in an older scheme than :func:`hash_password` writes."""
    return not stored.startswith(SCHEME + "$")


def is_slow(stored: str) -> bool:
    """True if checking against ``stored`` costs milliseconds (run it off the event loop)."""
    return stored.startswith("scrypt$")


def _hmac_sha256(password: str, salt: bytes) -> bytes:
    return hmac.new(salt, password.encode("utf-8"), hashlib.sha256).digest()


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32
    )


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored`` (either scheme; see :func:`is_slow`)."""
    try:
        scheme, *fields = stored.split("$")
        if scheme == SCHEME:
            salt, digest = fields
            actual = _hmac_sha256(password, base64.b64decode(salt))
        elif scheme == "scrypt":
            log2_n, r, p, salt, digest = fields
            actual = _scrypt(password, base64.b64decode(salt), int(log2_n), int(r), int(p))
        else:
            return False
        expected = base64.b64decode(digest)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_password() -> str:
    """A random 24-character password for a new station."""
    return secrets.token_urlsafe(18)


class StationRegistry:
    """Registry operations on the fleet store (used by the CLI and tests)."""

    def __init__(self, store: FleetStore) -> None:
        self._store = store

    async def add(
        self,
        station_id: str,
        *,
        security_profile: int,
        site: str,
        region: str,
        password: str | None,
        now: datetime,
    ) -> StationEntry:
        check_station_identity(station_id)
        if security_profile not in (1, 2, 3):
            raise RegistryError(f"security profile {security_profile}: must be 1, 2 or 3")
        if security_profile in (1, 2) and password is None:
            raise RegistryError(f"security profile {security_profile} needs a password")
        hashed = hash_password(password) if password is not None else None
        entry = StationEntry(station_id, security_profile, True, site, region, hashed)
        await self._store.add_station(entry, now=now)
        return entry

    async def set_enabled(self, station_id: str, enabled: bool) -> None:
        await self._store.update_station(station_id, enabled=enabled)

    async def set_password(self, station_id: str, password: str) -> None:
        await self._store.update_station(station_id, password_hash=hash_password(password))

    async def list(self) -> Sequence[StationEntry]:
        return await self._store.stations()
