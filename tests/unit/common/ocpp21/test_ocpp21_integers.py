"""OCPP's ``integer`` is 32-bit signed (part 2, data types): values outside it get a CALLERROR
``TypeConstraintViolation`` at the adapter, in both roles, for CALLs and for CALLRESULTs.

Regression of issue 13 item 1: a ``StatusNotification`` with ``evseId`` = 2^63 was answered
normally and later stopped ``vpp-core`` when the write-behind hit SQLite's INTEGER."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp.v21 import call, call_result

from v2g_common.ocpp21 import CsmsEndpoint, RequestInvalid, ResponseInvalid, on
from v2g_common.ocpp21.payloads import codec_for
from v2g_common.ocpp21.schemas import prepare_for_compiling
from v2g_gateway.station.endpoint import StationEndpoint as GatewayStationEndpoint

NOW = "2026-11-21T10:00:00Z"
HUGE = 2**63
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class Csms(CsmsEndpoint):
    @on("StatusNotification")
    def on_status(self, **kw: Any) -> Any:
        self.statuses.append(kw)
        return call_result.StatusNotification()

    @on("TransactionEvent")
    def on_tx(self, **kw: Any) -> Any:
        self.statuses.append(kw)
        return call_result.TransactionEvent()

    statuses: list[dict[str, Any]]


def status(evse_id: Any) -> dict[str, Any]:
    return {"timestamp": NOW, "connectorStatus": "Occupied", "evseId": evse_id, "connectorId": 1}


def tx_event(*, seq_no: Any = 1, evse_id: Any = 1) -> dict[str, Any]:
    return {
        "eventType": "Updated",
        "timestamp": NOW,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": "tx-1"},
        "evse": {"id": evse_id, "connectorId": 1},
    }


CASES = [
    ("StatusNotification", status(HUGE), "payload.evseId"),
    ("StatusNotification", status(INT32_MAX + 1), "payload.evseId"),
    ("StatusNotification", status(-(2**40)), "payload.evseId"),
    ("StatusNotification", status(float(2**64)), "payload.evseId"),
    ("TransactionEvent", tx_event(seq_no=HUGE), "payload.seqNo"),
    ("TransactionEvent", tx_event(seq_no=INT32_MIN - 1), "payload.seqNo"),
    ("TransactionEvent", tx_event(evse_id=HUGE), "payload.evse.id"),
]


@pytest.mark.parametrize("subprotocol", ["ocpp2.1", "ocpp2.0.1"])
@pytest.mark.parametrize(("action", "payload", "path"), CASES)
async def test_csms_answers_out_of_range_integers_with_type_constraint_violation(
    make_connection: Any,
    run_endpoint: Any,
    subprotocol: str,
    action: str,
    payload: dict[str, Any],
    path: str,
) -> None:
    connection = make_connection(subprotocol)
    csms = Csms("CS-1", connection)
    csms.statuses = []
    async with run_endpoint(csms):
        connection.feed([2, "m-1", action, payload])
        answer = await connection.next_sent()
        # the connection lives on: the next, valid, frame is answered normally
        connection.feed([2, "m-2", "StatusNotification", status(INT32_MAX)])
        assert await connection.next_sent() == [3, "m-2", {}]
    assert answer[:3] == [4, "m-1", "TypeConstraintViolation"]
    assert answer[4] == {"path": path, "rule": "int32"}
    assert "32-bit" in answer[3]
    assert [s["evse_id"] for s in csms.statuses] == [INT32_MAX]  # the bad one never arrived


async def test_the_schemas_own_bound_keeps_its_code(connection: Any, run_endpoint: Any) -> None:
    """``evseId`` -1 is inside the integer type but below the schema's ``minimum: 0``."""
    csms = Csms("CS-1", connection)
    csms.statuses = []
    async with run_endpoint(csms):
        connection.feed([2, "m-1", "StatusNotification", status(-1)])
        answer = await connection.next_sent()
    assert answer[:3] == [4, "m-1", "PropertyConstraintViolation"]
    assert answer[4] == {"path": "payload.evseId", "rule": "minimum"}


class _NoServices:
    """The station's services must never be reached by a payload the adapter refuses."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"handler ran: services.{name}")


async def test_station_answers_out_of_range_integers_too(
    connection: Any, run_endpoint: Any
) -> None:
    station = GatewayStationEndpoint("CS-1", connection, services=_NoServices())  # type: ignore[arg-type]
    profile = {
        "id": HUGE,
        "stackLevel": 50,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000.0}],
            }
        ],
    }
    async with run_endpoint(station):
        connection.feed([2, "c-1", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}])
        answer = await connection.next_sent()
    assert answer[:3] == [4, "c-1", "TypeConstraintViolation"]
    assert answer[4]["path"] == "payload.chargingProfile.id"


async def test_station_refuses_an_out_of_range_callresult(
    connection: Any, run_endpoint: Any
) -> None:
    """A CSMS's BootNotification answer with ``interval`` 2^63: the caller gets
    :class:`ResponseInvalid`, the CSMS a CALLRESULTERROR (2.1)."""
    station = GatewayStationEndpoint("CS-1", connection, services=_NoServices())  # type: ignore[arg-type]
    info = {"model": "m", "vendor_name": "v"}
    async with run_endpoint(station):
        pending = asyncio.create_task(
            station.call(call.BootNotification(reason="PowerUp", charging_station=info))
        )
        request = await connection.next_sent()
        answer = {"currentTime": NOW, "interval": HUGE, "status": "Accepted"}
        connection.feed([3, request[1], answer])
        with pytest.raises(ResponseInvalid) as caught:
            await pending
        reply = await connection.next_sent()
    assert caught.value.code == "TypeConstraintViolation"
    assert reply[:3] == [5, request[1], "TypeConstraintViolation"]
    assert reply[4]["path"] == "payload.interval"


def test_outgoing_requests_are_bounded_as_well() -> None:
    codec = codec_for("ocpp2.1")
    with pytest.raises(RequestInvalid) as caught:
        codec.encode_request(call.ClearChargingProfile(charging_profile_id=HUGE))
    assert caught.value.code == "TypeConstraintViolation"


def _integer_nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [n for item in node for n in _integer_nodes(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("type") == "integer" else []
    return found + [n for value in node.values() for n in _integer_nodes(value)]


@pytest.mark.parametrize("subprotocol", ["ocpp2.1", "ocpp2.0.1"])
def test_every_integer_of_every_schema_is_bounded(subprotocol: str) -> None:
    """Both versions, requests and responses: no integer node escapes the 32-bit bound."""
    schemas = codec_for(subprotocol).catalogue.schemas
    total = 0
    for name, schema in schemas.items():
        prepared, _checks = prepare_for_compiling(schema)
        for node in _integer_nodes(prepared):
            total += 1
            assert node["minimum"] >= INT32_MIN, (name, node)
            assert node["maximum"] <= INT32_MAX, (name, node)
    assert total > 200  # 385 (2.1) and 207 (2.0.1) in the raw schemas, more once inlined
