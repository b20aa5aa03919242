"""Fixtures shared by every test package: PKI, a TLS mosquitto, PostgreSQL, pty serial links."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import MosquittoBroker
from tests.support.nats_server import NatsServer
from v2g_common.pki import provision

#: Client identities every test PKI has; more with ``TestPki.client(identity)``.
DEFAULT_CLIENTS = ("CS-0001", "CS-0002", "CS-0003", "site-a", "site-b", "core")


class TestPki:
    """A provisioned PKI directory for tests (the same code as ``scripts/provision-pki``)."""

    __test__ = False  # not a test class

    def __init__(self, root: Path) -> None:
        self.layout = provision(root, clients=DEFAULT_CLIENTS)

    @property
    def ca(self) -> Path:
        return self.layout.ca_cert

    def server(self, name: str) -> tuple[Path, Path]:
        """(cert, key) of the ``csms`` or ``broker`` server certificate."""
        return self.layout.server_cert(name), self.layout.server_key(name)

    def client(self, identity: str) -> tuple[Path, Path]:
        """(cert, key) of a client certificate with CN = identity, issued on first use."""
        cert = self.layout.client_cert(identity)
        if not cert.exists():
            provision(self.layout.root, clients=[identity])
        return cert, self.layout.client_key(identity)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mosquitto_tls(tmp_path: Path, pki: TestPki) -> Iterator[MosquittoBroker]:
    """A running mosquitto with a TLS listener requiring client certificates (CN = user)."""
    broker = MosquittoBroker(tmp_path, pki.layout)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


PG_ADMIN_DSN = os.environ.get("V2G_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of the test's own (JetStream on, free port, own store directory)."""
    with NatsServer(tmp_path / "nats") as server:
        yield server


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A throw-away PostgreSQL database (asyncpg DSN) on the machine's server.

    Skipped when no server answers, except in CI (``CI=true``) where that is a failure.
    """
    name = f"v2g_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}")
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def null_modem() -> Iterator[object]:
    """Two tty paths (``port_a``, ``port_b``) bridged like a null-modem cable, with fault
    injection (see ``v2g_sim.serial_link.NullModem``)."""
    from v2g_sim.serial_link import NullModem

    with NullModem() as link:
        yield link
