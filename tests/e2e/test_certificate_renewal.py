"""Security profile 3 certificate renewal end to end (A02, TC_A_11): our station, whose client
certificate expires in 10 days, connects over mutual TLS to our running core (``run_core``,
SQLite); the core asks it to renew after its BootNotification, signs its SignCertificate with
the project's CA, sends CertificateSigned; the station installs it and reconnects with it;
on that first use the core revokes the old certificate, which is then refused at the TLS
handshake stage (HTTP 403), also after a core restart; and a certificate revoked with the CLI
is refused while the core runs."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import TestPki
from tests.doubles.scripted_control import ScriptedControl
from tests.doubles.waiting import eventually
from v2g_common.pki import CertificateAuthority, IssuedCertificate, client_context
from v2g_gateway.station import ChargingStation, StationConfig
from v2g_gateway.station.config import ReconnectConfig
from vpp_core.app import main, run_core
from vpp_core.config import CoreConfig
from vpp_core.csms import CsmsServer
from vpp_core.fleet import FleetStore, StationRegistry
from vpp_core.fleet.equipment import EquipmentStore

IDENTITY = "CS-RENEW"


def serial_of(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def core_config(tmp_path: Path, pki: TestPki) -> CoreConfig:
    cert, key = pki.server("csms")
    return CoreConfig.model_validate(
        {
            "csms": {
                "host": "127.0.0.1",
                "port": 0,
                "tls_cert_file": cert,
                "tls_key_file": key,
                "tls_client_ca_file": pki.ca,
                "ca_cert_file": pki.ca,
                "ca_key_file": pki.layout.ca_key,
                "certificate_renew_before_days": 30,
                "ping_interval_s": 0,
            },
            "fleet": {
                "database_url": f"sqlite:///{tmp_path / 'fleet.db'}",
                "registry_refresh_s": 0.1,
                "write_interval_s": 0.05,
            },
            "metrics": {"port": 0},
            "runtime": {"gc_freeze_after_start": False},
        }
    )


@asynccontextmanager
async def running_core(config: CoreConfig) -> AsyncIterator[CsmsServer]:
    stop = asyncio.Event()
    ready: asyncio.Future[CsmsServer] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_core(config, stop=stop, on_ready=ready.set_result))
    try:
        yield await asyncio.wait_for(ready, 20)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def handshake_status(port: int, pki: TestPki, cert: Path, key: Path) -> int | None:
    """None when the core admits this certificate, else the HTTP status it refused with."""
    ssl = client_context(pki.ca, cert=cert, key=key)
    try:
        async with connect(
            f"wss://localhost:{port}/ocpp/{IDENTITY}", ssl=ssl, subprotocols=["ocpp2.1"]
        ):
            return None
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_renewal_before_expiry_then_the_old_certificate_is_refused(
    tmp_path: Path, pki: TestPki
) -> None:
    ca = CertificateAuthority(IssuedCertificate.load(pki.ca, pki.layout.ca_key))
    soon = ca.issue_client(IDENTITY, valid_days=10)
    cert, key = tmp_path / "station" / "client.pem", tmp_path / "station" / "client.key"
    soon.write(cert, key)
    old_cert, old_key = tmp_path / "old.pem", tmp_path / "old.key"
    shutil.copy(cert, old_cert)
    shutil.copy(key, old_key)
    config = core_config(tmp_path, pki)
    store = await FleetStore.open(config.fleet.database_url)
    await StationRegistry(store).add(
        IDENTITY, security_profile=3, site="s", region="r", password=None, now=datetime.now(UTC)
    )
    records = EquipmentStore(store.engine)
    async with running_core(config) as csms:
        station = StationConfig(
            csms_url=f"wss://localhost:{csms.port}/ocpp",
            identity=IDENTITY,
            security_profile=3,
            ca_cert=pki.ca,
            client_cert=cert,
            client_key=key,
            state_dir=tmp_path / "station-state",
            certificate_renew_before_days=0,  # only when the CSMS asks
            control_tick_s=0.1,
            lease_valid_for_s=1.0,
            reconnect=ReconnectConfig(initial_s=0.05, max_s=0.3),
        )
        async with ChargingStation(station, control=ScriptedControl()):
            await eventually(
                lambda: serial_of(cert) != soon.certificate.serial_number, timeout_s=20
            )
            new_serial = format(serial_of(cert), "x")
            renewed = x509.load_pem_x509_certificate(cert.read_bytes())
            assert renewed.not_valid_after_utc - datetime.now(UTC) > timedelta(days=300)

            async def revoked_old() -> bool:
                rows = {r.serial: r for r in await records.certificates(IDENTITY)}
                new = rows.get(new_serial)
                old = rows.get(format(soon.certificate.serial_number, "x"))
                return bool(new and new.first_used_at and old and old.revoked_at)

            async with asyncio.timeout(20):
                while not await revoked_old():  # noqa: ASYNC110 - rows written by the core
                    await asyncio.sleep(0.05)
            # The station now runs on the new certificate: its live connection used it.
            assert csms.endpoints[IDENTITY].peer_certificate.serial == new_serial  # type: ignore[union-attr]
        assert await handshake_status(csms.port, pki, old_cert, old_key) == 403
        assert await handshake_status(csms.port, pki, cert, key) is None
    # A restarted core keeps refusing it (the revocation is in the database).
    async with running_core(config) as csms:
        assert await handshake_status(csms.port, pki, old_cert, old_key) == 403
        assert await handshake_status(csms.port, pki, cert, key) is None
        # Revoked by hand while the core runs: refused within the refresh interval.
        toml = tmp_path / "core.toml"
        toml.write_text(f'[fleet]\ndatabase_url = "{config.fleet.database_url}"\n')
        args: list[Any] = ["certificates", "revoke", new_serial, "--station", IDENTITY]
        assert await asyncio.to_thread(main, [*args, "--config", str(toml)]) == 0

        async def refused() -> bool:
            return await handshake_status(csms.port, pki, cert, key) == 403

        async with asyncio.timeout(10):
            while not await refused():  # noqa: ASYNC110 - the core polls the database
                await asyncio.sleep(0.1)
    await store.close()
