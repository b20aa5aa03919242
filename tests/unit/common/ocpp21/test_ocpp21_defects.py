"""One test per defect of ``ocpp`` 2.1.0 that the adapter fixes (see the package docstring).

Each test runs twice: through our adapter (must pass) and through the bare library, marked
``xfail(strict=True)``: that twin proves the library really has the defect today, and starts
*failing* the day an upstream release fixes it -- the signal to shrink the adapter.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import jsonschema
import pytest
from ocpp.exceptions import FormatViolationError, PropertyConstraintViolationError
from ocpp.messages import unpack
from ocpp.routing import on as library_on
from ocpp.v21 import ChargePoint as LibraryChargePoint
from ocpp.v21 import call, call_result, datatypes, enums

from v2g_common.ocpp21 import CsmsEndpoint, decode_frame, on
from v2g_common.ocpp21.payloads import codec_for

SCHEMAS = codec_for("ocpp2.1").catalogue.schemas


def on_bare_library(raises: type[BaseException]) -> Any:
    """The bare-library twin: must fail today, and exactly the way the defect makes it."""
    return pytest.param(
        "library",
        marks=pytest.mark.xfail(strict=True, raises=raises, reason="defect of ocpp 2.1.0"),
    )


FAILS_ASSERTION = ["adapter", on_bare_library(AssertionError)]


class Captured(Exception):
    """Raised by the capturing connection once the first frame went out."""


class CapturingConnection:
    subprotocol = "ocpp2.1"

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def recv(self) -> str:
        raise EOFError

    async def send(self, message: str) -> None:
        self.sent.append(message)
        raise Captured


async def sent_by_call(implementation: str, request: Any) -> dict[str, Any]:
    """The payload ``call(request)`` puts on the wire (the library validates it first)."""
    connection = CapturingConnection()
    endpoint: Any = (
        CsmsEndpoint("CS-1", connection)
        if implementation == "adapter"
        else LibraryChargePoint("CS-1", connection)
    )
    with pytest.raises(Captured):
        await endpoint.call(request)
    frame: list[Any] = json.loads(connection.sent[0])
    payload: dict[str, Any] = frame[3]
    return payload


def discharge_profile() -> call.SetChargingProfile:
    period = datatypes.ChargingSchedulePeriodType(
        start_period=0,
        operation_mode=enums.OperationModeEnumType.central_setpoint,
        setpoint=-7000.0,
        setpoint_l2=-7000.0,
        setpoint_l3=-7000.0,
        discharge_limit=-11000.0,
        discharge_limit_l2=-11000.0,
        discharge_limit_l3=-11000.0,
        limit_l2=0.0,
    )
    schedule = datatypes.ChargingScheduleType(
        id=1,
        charging_rate_unit=enums.ChargingRateUnitEnumType.w,
        charging_schedule_period=[period],
        limit_at_soc=datatypes.LimitAtSoCType(soc=20, limit=0.0),
    )
    profile = datatypes.ChargingProfileType(
        id=7,
        stack_level=50,
        charging_profile_purpose=enums.ChargingProfilePurposeEnumType.tx_profile,
        charging_profile_kind=enums.ChargingProfileKindEnumType.absolute,
        charging_schedule=[schedule],
        transaction_id="tx-1",
        max_offline_duration=30,
    )
    return call.SetChargingProfile(evse_id=1, charging_profile=profile)


def charging_needs() -> call.NotifyEVChargingNeeds:
    v2x = datatypes.V2XChargingParametersType(
        max_charge_power=11000.0,
        max_discharge_power=11000.0,
        max_discharge_power_l2=3700.0,
        min_charge_power_l3=0.0,
        target_soc=80,
    )
    needs = datatypes.ChargingNeedsType(
        requested_energy_transfer=enums.EnergyTransferModeEnumType.ac_bpt,
        control_mode=enums.ControlModeEnumType.scheduled_control,
        departure_time="2026-11-21T18:00:00Z",
        v2x_charging_parameters=v2x,
    )
    return call.NotifyEVChargingNeeds(
        evse_id=1, charging_needs=needs, timestamp="2026-11-21T10:00:00Z"
    )


# -- defect 1: outgoing key names ---------------------------------------------------------
# The library's call() converts, then validates its own output and rejects it.
REJECTS_ITS_OWN_OUTPUT = ["adapter", on_bare_library(FormatViolationError)]


@pytest.mark.parametrize("implementation", REJECTS_ITS_OWN_OUTPUT)
async def test_set_charging_profile_keys_are_the_schema_keys(implementation: str) -> None:
    payload = await sent_by_call(implementation, discharge_profile())
    schedule = payload["chargingProfile"]["chargingSchedule"][0]
    period = schedule["chargingSchedulePeriod"][0]
    assert set(period) == {
        "startPeriod", "operationMode", "setpoint", "setpoint_L2", "setpoint_L3",
        "dischargeLimit", "dischargeLimit_L2", "dischargeLimit_L3", "limit_L2",
    }  # fmt: skip
    assert schedule["limitAtSoC"] == {"soc": 20, "limit": 0.0}
    jsonschema.validate(payload, SCHEMAS["SetChargingProfileRequest"])


@pytest.mark.parametrize("implementation", REJECTS_ITS_OWN_OUTPUT)
async def test_ev_charging_needs_keys_are_the_schema_keys(implementation: str) -> None:
    payload = await sent_by_call(implementation, charging_needs())
    v2x = payload["chargingNeeds"]["v2xChargingParameters"]
    assert v2x == {
        "maxChargePower": 11000.0,
        "maxDischargePower": 11000.0,
        "maxDischargePower_L2": 3700.0,
        "minChargePower_L3": 0.0,
        "targetSoC": 80,
    }
    jsonschema.validate(payload, SCHEMAS["NotifyEVChargingNeedsRequest"])


# -- defect 2: incoming names that do not match the library's own dataclass fields ---------
AUTHORIZE = [2, "a-1", "Authorize", {
    "idToken": {"idToken": "04A2", "type": "ISO14443"},
    "iso15118CertificateHashData": [{
        "hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b",
        "serialNumber": "1", "responderURL": "http://ocsp",
    }],
}]  # fmt: skip


class AdapterAuthorizer(CsmsEndpoint):
    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
        self.kwargs = kwargs
        return call_result.Authorize(id_token_info={"status": "Accepted"})


class LibraryAuthorizer(LibraryChargePoint):
    @library_on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
        self.kwargs = kwargs
        return call_result.Authorize(id_token_info={"status": "Accepted"})


@pytest.mark.parametrize("implementation", FAILS_ASSERTION)
async def test_incoming_kwargs_match_the_dataclass_fields(
    implementation: str, make_connection: Any
) -> None:
    connection = make_connection()
    endpoint: Any = (AdapterAuthorizer if implementation == "adapter" else LibraryAuthorizer)(
        "CS-1", connection
    )
    await endpoint.route_message(json.dumps(AUTHORIZE))
    assert json.loads(connection.sent[0])[:2] == [3, "a-1"]
    # the library's own request dataclass must accept what the handler got
    assert set(endpoint.kwargs) <= {f.name for f in dataclasses.fields(call.Authorize)}
    request = call.Authorize(id_token={"id_token": "04A2"}, **endpoint.kwargs)
    assert request.iso_15118_certificate_hash_data[0]["responder_url"] == "http://ocsp"


# -- defect 3: an action without a handler gets no answer under 2.1 -------------------------
class Silent(CsmsEndpoint):
    """No handlers at all."""


async def answers_to(
    implementation: str, frames: list[str], make_connection: Any
) -> list[list[Any]]:
    connection = make_connection()
    endpoint: Any = (
        Silent("CS-1", connection)
        if implementation == "adapter"
        else LibraryChargePoint("CS-1", connection)
    )
    route: Callable[[str], Awaitable[None]] = endpoint.route_message
    for frame in frames:
        await route(frame)
    return [json.loads(text) for text in connection.sent]


@pytest.mark.parametrize("implementation", FAILS_ASSERTION)
async def test_unhandled_and_unknown_actions_get_not_implemented(
    implementation: str, make_connection: Any
) -> None:
    answers = await answers_to(implementation, [
        '[2,"k-1","GetDERControl",{"requestId":1}]',
        '[2,"k-2","MakeCoffee",{"sugar":2}]',
    ], make_connection)  # fmt: skip
    assert [a[:3] for a in answers] == [
        [4, "k-1", "NotImplemented"],
        [4, "k-2", "NotImplemented"],
    ]


# -- defect 4: malformed frames are dropped without an answer -------------------------------
@pytest.mark.parametrize("implementation", FAILS_ASSERTION)
async def test_malformed_frames_get_a_call_error(implementation: str, make_connection: Any) -> None:
    answers = await answers_to(implementation, [
        "{not json",
        '{"an": "object"}',
        '[2,"m-3","Heartbeat"]',
        '[8,"m-4","Heartbeat",{}]',
    ], make_connection)  # fmt: skip
    assert [a[:3] for a in answers] == [
        [4, "-1", "RpcFrameworkError"],
        [4, "-1", "RpcFrameworkError"],
        [4, "m-3", "ProtocolError"],
        [4, "m-4", "MessageTypeNotSupported"],
    ]


# -- defect 5: message types 5 and 6 are rejected by the parser -----------------------------
SEND_FRAME = (
    '[6,"s-1","NotifyPeriodicEventStream",'
    '{"id":3,"pending":0,"basetime":"2026-11-21T10:00:00Z","data":[{"t":0.5,"v":"230.1"}]}]'
)
CALL_RESULT_ERROR_FRAME = '[5,"r-1","FormatViolation","result rejected",{}]'


@pytest.mark.parametrize(
    "implementation", ["adapter", on_bare_library(PropertyConstraintViolationError)]
)
@pytest.mark.parametrize(
    "text", [SEND_FRAME, CALL_RESULT_ERROR_FRAME], ids=["SEND", "CALLRESULTERROR"]
)
def test_types_5_and_6_are_parsed(implementation: str, text: str) -> None:
    frame = decode_frame(text) if implementation == "adapter" else unpack(text)
    assert frame.message_type_id == json.loads(text)[0]
