"""The coordinator lease: a PostgreSQL session advisory lock (docs/cluster.md says why not a
JetStream KV key).

The holder keeps one connection open holding ``pg_advisory_lock(LEASE_KEY)``. PostgreSQL
releases it when that session ends: at once when the process dies (``kill -9``: the kernel
closes the socket), within about ``ttl_s`` when its host vanishes (server-side TCP keepalives
set on the session). The holder checks the session every ``ttl_s / 3`` (a query bounded by
``ttl_s / 3``) and reports the lease lost when it fails, before PostgreSQL can hand it on.
A standby tries every ``ttl_s / 6``.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg  # type: ignore[import-untyped]

__all__ = ["LEASE_KEY", "CoordinatorLease", "LeaseLost"]

log = logging.getLogger(__name__)
#: pg_advisory_lock key of the coordinator lease ("vpp-core coordinator").
LEASE_KEY = 0x5650_5043_4F4F_5244 & 0x7FFF_FFFF_FFFF_FFFF


class LeaseLost(Exception):
    """The active coordinator can no longer show it holds the lease."""


def _dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class CoordinatorLease:
    def __init__(self, database_url: str, *, ttl_s: float) -> None:
        self.dsn = _dsn(database_url)
        self.ttl_s = ttl_s
        self._conn: asyncpg.Connection | None = None

    async def acquire(self) -> None:
        """Wait until this process holds the lease."""
        while True:
            try:
                if await self._try():
                    return
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("coordinator lease: database unreachable (%r)", exc)
                await self._close()
            await asyncio.sleep(self.ttl_s / 6)

    async def _try(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self.dsn,
                timeout=self.ttl_s,
                server_settings=_keepalives(self.ttl_s),
            )
        got = await self._conn.fetchval(
            "SELECT pg_try_advisory_lock($1)", LEASE_KEY, timeout=self.ttl_s
        )
        return bool(got)

    async def hold(self) -> None:
        """Return (raise :class:`LeaseLost`) only when the lease can no longer be shown held."""
        assert self._conn is not None, "acquire first"
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                held = await self._conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid() AND granted"
                    " AND (classid::bigint << 32 | objid::bigint) = $1",
                    LEASE_KEY,
                    timeout=self.ttl_s / 3,
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                raise LeaseLost(f"lease session lost: {exc!r}") from exc
            if not held:
                raise LeaseLost("lease lock no longer held")

    async def release(self) -> None:
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), self.ttl_s)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                conn.terminate()


def _keepalives(ttl_s: float) -> dict[str, str]:
    """The server notices a vanished client within about ``ttl_s``."""
    idle = max(1, int(ttl_s / 3))
    return {
        "tcp_keepalives_idle": str(idle),
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": str(max(1, int(ttl_s - idle))),
        "application_name": "vpp-core coordinator lease",
    }
