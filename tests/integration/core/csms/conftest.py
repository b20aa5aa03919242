"""A running CSMS on loopback (TLS, profiles 2 and 3 on one port) and raw JSON stations."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.integration.core.fleet.databases import fleet_db_url  # noqa: F401 (fixture)
from v2g_common.pki import client_context
from vpp_core.csms import CsmsConfig, CsmsServer
from vpp_core.fleet import FleetState, StationEntry, hash_password

PASSWORD = "s3cret-password-0001"
STATIONS = [
    StationEntry("CS-0001", 2, True, "site-a", "north", hash_password(PASSWORD)),
    StationEntry("CS-0002", 3, True, "site-a", "north", None),
    StationEntry("CS-0003", 3, True, "site-b", "south", None),
    StationEntry("CS-OFF", 2, False, "site-b", "south", hash_password(PASSWORD)),
    StationEntry("LAB-1", 1, True, "lab", "lab", hash_password(PASSWORD)),
]


class RawStation:
    """A station speaking OCPP-J by hand: exact JSON frames in, exact frames out."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self.unexpected: list[Any] = []  # frames that were not the awaited answer

    async def call(
        self, action: str, payload: dict[str, Any], *, timeout_s: float = 5.0
    ) -> list[Any]:
        message_id = f"m{next(self._ids)}"
        await self.ws.send(json.dumps([2, message_id, action, payload]))
        return await self.answer(message_id, timeout_s=timeout_s)

    async def answer(self, message_id: str, *, timeout_s: float = 5.0) -> list[Any]:
        """The next CALLRESULT/CALLERROR for ``message_id`` (CALLs from the CSMS are kept)."""
        async with asyncio.timeout(timeout_s):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame[0] in (3, 4) and frame[1] == message_id:
                    return list(frame)
                self.unexpected.append(frame)


class CsmsUnderTest:
    def __init__(self, server: CsmsServer, pki: Any) -> None:
        self.server = server
        self.pki = pki

    @property
    def url(self) -> str:
        scheme = "wss" if self.server.config.tls else "ws"
        return f"{scheme}://localhost:{self.server.port}/ocpp"

    def ssl_for(self, cert_identity: str | None) -> ssl.SSLContext:
        if cert_identity is None:
            return client_context(self.pki.ca)
        cert, key = self.pki.client(cert_identity)
        return client_context(self.pki.ca, cert=cert, key=key)

    @asynccontextmanager
    async def station(
        self,
        identity: str,
        *,
        password: str | None = None,
        cert_identity: str | None = None,
        subprotocols: tuple[str, ...] = ("ocpp2.1",),
        **options: Any,
    ) -> AsyncIterator[RawStation]:
        headers = {}
        if password is not None:
            token = base64.b64encode(f"{identity}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        ssl_ctx = self.ssl_for(cert_identity) if self.server.config.tls else None
        async with connect(
            f"{self.url}/{identity}",
            ssl=ssl_ctx,
            additional_headers=headers,
            subprotocols=list(subprotocols),  # type: ignore[arg-type]
            compression=None,
            open_timeout=5,
            **options,
        ) as ws:
            yield RawStation(ws)


@pytest.fixture
def csms_config(pki: Any) -> Callable[..., CsmsConfig]:
    def make(**overrides: Any) -> CsmsConfig:
        cert, key = pki.server("csms")
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "tls_cert_file": cert,
            "tls_key_file": key,
            "tls_client_ca_file": pki.ca,
            "ping_interval_s": 0,
        }
        values.update(overrides)
        return CsmsConfig(**values)

    return make


@pytest.fixture
async def csms(csms_config: Callable[..., CsmsConfig], pki: Any) -> AsyncIterator[CsmsUnderTest]:
    fleet = FleetState()
    fleet.set_entries(STATIONS)
    async with CsmsServer(csms_config(), fleet) as server:
        yield CsmsUnderTest(server, pki)


def boot_payload() -> dict[str, Any]:
    return {"chargingStation": {"model": "M1", "vendorName": "V"}, "reason": "PowerUp"}


def tx_payload(
    event: str,
    seq: int,
    ts: str,
    *,
    tx: str = "tx-1",
    power_w: float = -7000,
    import_wh: float = 1000,
    export_wh: float = 500,
    soc: float = 60,
    evse: int = 1,
) -> dict[str, Any]:
    return {
        "eventType": event,
        "timestamp": ts,
        "triggerReason": "MeterValuePeriodic" if event == "Updated" else "CablePluggedIn",
        "seqNo": seq,
        "transactionInfo": {"transactionId": tx, "chargingState": "Charging"},
        "evse": {"id": evse, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": ts,
                "sampledValue": [
                    {"value": power_w, "measurand": "Power.Active.Import"},
                    {"value": import_wh, "measurand": "Energy.Active.Import.Register"},
                    {"value": export_wh, "measurand": "Energy.Active.Export.Register"},
                    {"value": soc, "measurand": "SoC"},
                ],
            }
        ],
    }


def needs_payload(evse: int = 1) -> dict[str, Any]:
    return {
        "evseId": evse,
        "chargingNeeds": {
            "requestedEnergyTransfer": "DC_BPT",
            "departureTime": "2026-03-01T18:00:00Z",
            "v2xChargingParameters": {
                "maxChargePower": 11000,
                "minChargePower": 0,
                "maxDischargePower": 10000,
                "minDischargePower": 0,
                "evMinV2XEnergyRequest": 20000,
                "targetSoC": 80,
            },
        },
    }
