"""The adapter over real websockets on loopback, each role against a raw-JSON peer."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jsonschema
import pytest
from ocpp.v21 import call, call_result, datatypes, enums
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus

from tests.conftest import TestPki
from v2g_common.ocpp21 import (
    ChargingStationEndpoint,
    CsmsEndpoint,
    OcppCallError,
    SubprotocolNotNegotiated,
    connect_to_csms,
    on,
    select_subprotocol,
    server_subprotocols,
)
from v2g_common.ocpp21.payloads import codec_for

pytestmark = pytest.mark.integration

SCHEMAS = codec_for("ocpp2.1").catalogue.schemas
NOW = "2026-11-21T10:00:00Z"
WAIT_S = 5.0


class LoopbackCsms(CsmsEndpoint):
    @on("BootNotification")
    async def on_boot(self, **kwargs: Any) -> Any:
        return call_result.BootNotification(current_time=NOW, interval=300, status="Accepted")

    @on("Heartbeat")
    async def on_heartbeat(self, **kwargs: Any) -> Any:
        return call_result.Heartbeat(current_time=NOW)

    @on("NotifyPeriodicEventStream")
    async def on_stream(self, **kwargs: Any) -> None:
        self.streamed = kwargs


@asynccontextmanager
async def csms_server() -> AsyncIterator[tuple[int, asyncio.Queue[LoopbackCsms]]]:
    """Our CSMS endpoint behind websockets' serve; yields (port, endpoints as they connect)."""
    endpoints: asyncio.Queue[LoopbackCsms] = asyncio.Queue()

    async def handler(websocket: ServerConnection) -> None:
        assert websocket.request is not None
        endpoint = LoopbackCsms(websocket.request.path.rsplit("/", 1)[-1], websocket)
        endpoints.put_nowait(endpoint)
        await endpoint.run()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=server_subprotocols(),
        select_subprotocol=select_subprotocol,
    ) as server:
        yield server.sockets[0].getsockname()[1], endpoints


async def exchange(station: ClientConnection, frame: Any) -> list[Any]:
    await station.send(frame if isinstance(frame, str) else json.dumps(frame))
    async with asyncio.timeout(WAIT_S):
        answer: list[Any] = json.loads(await station.recv())
    return answer


async def test_csms_endpoint_answers_a_raw_station() -> None:
    async with (
        csms_server() as (port, _endpoints),
        connect(f"ws://127.0.0.1:{port}/CS-0001", subprotocols=["ocpp2.1"]) as station,  # type: ignore[list-item]
    ):
        boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
        assert await exchange(station, [2, "1", "BootNotification", boot]) == [
            3, "1", {"currentTime": NOW, "interval": 300, "status": "Accepted"},
        ]  # fmt: skip
        assert (await exchange(station, [2, "2", "Reset", {"type": "Immediate"}]))[:3] == [
            4, "2", "NotImplemented"
        ]  # fmt: skip
        assert (await exchange(station, [2, "3", "BrewCoffee", {}]))[:3] == [
            4, "3", "NotImplemented"
        ]  # fmt: skip
        assert (await exchange(station, "]]garbage[["))[:3] == [4, "-1", "RpcFrameworkError"]
        assert (await exchange(station, '[7,"4",{}]'))[:3] == [4, "4", "MessageTypeNotSupported"]
        assert (await exchange(station, [2, "5", "BootNotification", {"reason": 1}]))[:3] == [
            4, "5", "OccurrenceConstraintViolation"
        ]  # fmt: skip
        # a SEND and a stray CALLRESULT are not answered; the next answer is the Heartbeat's
        stream = {"id": 1, "pending": 0, "basetime": NOW, "data": []}
        await station.send(json.dumps([6, "6", "NotifyPeriodicEventStream", stream]))
        await station.send(json.dumps([3, "nobody-asked", {}]))
        assert await exchange(station, [2, "7", "Heartbeat", {}]) == [3, "7", {"currentTime": NOW}]


def discharge_profile() -> call.SetChargingProfile:
    period = datatypes.ChargingSchedulePeriodType(
        start_period=0,
        operation_mode=enums.OperationModeEnumType.central_setpoint,
        setpoint=-7000.0,
        setpoint_l2=-7000.0,
        discharge_limit=-7000.0,
        discharge_limit_l3=-7000.0,
    )
    schedule = datatypes.ChargingScheduleType(
        id=1, charging_rate_unit="W", charging_schedule_period=[period]
    )
    profile = datatypes.ChargingProfileType(
        id=1,
        stack_level=50,
        charging_profile_purpose="TxProfile",
        charging_profile_kind="Absolute",
        charging_schedule=[schedule],
        transaction_id="tx-1",
    )
    return call.SetChargingProfile(evse_id=1, charging_profile=profile)


async def test_csms_call_reaches_a_raw_station_with_exact_keys() -> None:
    async with (
        csms_server() as (port, endpoints),
        connect(f"ws://127.0.0.1:{port}/CS-0002", subprotocols=["ocpp2.1"]) as station,  # type: ignore[list-item]
    ):
        endpoint = await asyncio.wait_for(endpoints.get(), WAIT_S)
        pending = asyncio.create_task(endpoint.call(discharge_profile(), timeout_s=WAIT_S))
        async with asyncio.timeout(WAIT_S):
            frame = json.loads(await station.recv())
        assert frame[0] == 2
        assert frame[2] == "SetChargingProfile"
        jsonschema.validate(frame[3], SCHEMAS["SetChargingProfileRequest"])
        period = frame[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        assert period["setpoint_L2"] == -7000.0
        assert period["dischargeLimit_L3"] == -7000.0
        await station.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        assert await pending == call_result.SetChargingProfile(status="Accepted")


class RawCsms:
    """A CSMS made of websockets + JSON only, recording the handshake and the frames."""

    def __init__(self) -> None:
        self.path = ""
        self.authorization: str | None = None
        self.subprotocol: str | None = None
        self.frames: list[list[Any]] = []

    async def handler(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        self.path = websocket.request.path
        self.authorization = websocket.request.headers.get("Authorization")
        self.subprotocol = websocket.subprotocol
        boot = json.loads(await websocket.recv())
        self.frames.append(boot)
        await websocket.send(json.dumps([5, boot[1], "FormatViolation", "nope", {"k": 1}]))
        period = {"startPeriod": 0, "limit": 0.0, "limit_L2": 0.0, "setpoint_L3": -3000.0}
        schedule = {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [period]}
        limits = {
            "id": 2,
            "stackLevel": 60,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": "tx-1",
            "chargingSchedule": [schedule],
        }
        await websocket.send(json.dumps([2, "p-1", "SetChargingProfile",
                                         {"evseId": 1, "chargingProfile": limits}]))  # fmt: skip
        self.frames.append(json.loads(await websocket.recv()))
        await websocket.close()


class Station(ChargingStationEndpoint):
    @on("SetChargingProfile")
    async def on_profile(self, evse_id: int, charging_profile: dict[str, Any], **kw: Any) -> Any:
        self.period = charging_profile["charging_schedule"][0]["charging_schedule_period"][0]
        return call_result.SetChargingProfile(status="Accepted")


async def run_station_against(
    raw: RawCsms, *, tls: tuple[ssl.SSLContext, ssl.SSLContext] | None
) -> tuple[Station, OcppCallError]:
    server_tls, client_tls = tls if tls else (None, None)
    async with serve(raw.handler, "127.0.0.1", 0, subprotocols=server_subprotocols(),
                     ssl=server_tls) as server:  # fmt: skip
        port = server.sockets[0].getsockname()[1]
        scheme = "wss" if tls else "ws"
        connection = await connect_to_csms(
            f"{scheme}://localhost:{port}/ocpp/",
            "CS 7/β",
            ssl=client_tls,
            password="0123456789abcdef",
        )
        station = Station("CS 7/β", connection)
        async with asyncio.timeout(WAIT_S), asyncio.TaskGroup() as tasks:
            tasks.create_task(station.run())
            station_info = {"model": "M", "vendor_name": "V"}
            boot = call.BootNotification(reason="PowerUp", charging_station=station_info)
            with pytest.raises(OcppCallError) as caught:
                await station.call(boot)
    return station, caught.value


@pytest.mark.parametrize("use_tls", [False, True], ids=["ws", "wss"])
async def test_station_endpoint_against_a_raw_csms(use_tls: bool, pki: TestPki) -> None:
    tls = None
    if use_tls:
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(*pki.server("csms"))
        tls = (server_tls, ssl.create_default_context(cafile=str(pki.ca)))
    raw = RawCsms()
    station, error = await run_station_against(raw, tls=tls)
    assert raw.path == "/ocpp/CS%207%2F%CE%B2"
    assert raw.subprotocol == "ocpp2.1"
    assert raw.authorization is not None
    assert base64.b64decode(raw.authorization.split()[1]).decode() == "CS 7/β:0123456789abcdef"
    boot = raw.frames[0]
    assert boot[2:] == ["BootNotification", {"reason": "PowerUp",
                        "chargingStation": {"model": "M", "vendorName": "V"}}]  # fmt: skip
    assert (error.message_type_id, error.code, error.details) == (5, "FormatViolation", {"k": 1})
    assert raw.frames[1] == [3, "p-1", {"status": "Accepted"}]
    assert station.period == {"start_period": 0, "limit": 0.0, "limit_l2": 0.0,
                              "setpoint_l3": -3000.0}  # fmt: skip


async def test_connect_refuses_a_csms_that_picks_no_subprotocol() -> None:
    async def handler(websocket: ServerConnection) -> None:
        await websocket.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:  # no subprotocols configured
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(SubprotocolNotNegotiated):
            await connect_to_csms(f"ws://127.0.0.1:{port}", "CS-0001")


async def test_csms_refuses_a_station_without_an_ocpp_2_subprotocol() -> None:
    async with csms_server() as (port, _endpoints):
        with pytest.raises(InvalidStatus) as caught:
            await connect(f"ws://127.0.0.1:{port}/CS-9", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        assert caught.value.response.status_code == 400
        async with connect(f"ws://127.0.0.1:{port}/CS-9",
                           subprotocols=["ocpp2.0.1", "ocpp2.1"]) as ok:  # type: ignore[list-item]  # fmt: skip
            assert ok.subprotocol == "ocpp2.1"
