"""Payload codec: compiled schema validation with OCPP-J error codes, both directions."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from ocpp.v21 import call, call_result

from v2g_common.ocpp21.errors import OcppError, RequestInvalid, ResponseInvalid
from v2g_common.ocpp21.payloads import codec_for

CODEC = codec_for("ocpp2.1")

METER_VALUES: dict[str, Any] = {
    "evseId": 1,
    "meterValue": [
        {
            "timestamp": "2026-11-21T10:00:00Z",
            "sampledValue": [
                {"value": 63, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}},
                {
                    "value": -7000.0,
                    "measurand": "Power.Active.Import",
                    "context": "Sample.Periodic",
                },
            ],
        }
    ],
}


def mutated(change: Any) -> dict[str, Any]:
    payload = copy.deepcopy(METER_VALUES)
    change(payload)
    return payload


def test_valid_meter_values_become_snake_kwargs() -> None:
    kwargs = CODEC.decode_request("MeterValues", copy.deepcopy(METER_VALUES))
    assert kwargs["evse_id"] == 1
    sample = kwargs["meter_value"][0]["sampled_value"][0]
    assert sample == {"value": 63, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}}


INVALID = [
    # (mutation, code, path)
    (lambda p: p.update(evseId="one"), "TypeConstraintViolation", "payload.evseId"),
    (lambda p: p.pop("meterValue"), "OccurrenceConstraintViolation", "payload"),
    (lambda p: p.update(meterValue=[]), "OccurrenceConstraintViolation", "payload.meterValue"),
    (lambda p: p["meterValue"][0]["sampledValue"][1].update(measurand="Power.Active.Net"),
     "PropertyConstraintViolation", "payload.meterValue[0].sampledValue[1].measurand"),
    (lambda p: p.update(extraKey=1), "FormatViolation", "payload"),
    (lambda p: p["meterValue"][0].update(timestamp="yesterday"),
     "PropertyConstraintViolation", "payload.meterValue[0].timestamp"),
    (lambda p: p.update(evseId=-1), "PropertyConstraintViolation", "payload.evseId"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "code", "path"), INVALID)
def test_schema_violations_carry_the_ocpp_code_and_path(change: Any, code: str, path: str) -> None:
    payload = mutated(change)
    with pytest.raises(OcppError) as caught:
        CODEC.decode_request("MeterValues", payload)
    assert caught.value.code == code
    assert caught.value.details["path"] == path
    if path.endswith("timestamp"):
        return  # jsonschema checks date-time only with rfc3339-validator, not installed
    # the reference validator agrees the payload is invalid
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, CODEC.catalogue.schemas["MeterValuesRequest"],
                            format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)  # fmt: skip


def test_enum_error_names_the_allowed_values() -> None:
    payload = mutated(lambda p: p["meterValue"][0]["sampledValue"][0].update(measurand="Nope"))
    with pytest.raises(OcppError) as caught:
        CODEC.decode_request("MeterValues", payload)
    assert "'Nope' is not one of" in caught.value.description
    assert "Power.Active.Import" in caught.value.description


def test_incoming_timestamp_without_offset_is_accepted_outgoing_is_not() -> None:
    payload = mutated(lambda p: p["meterValue"][0].update(timestamp="2026-11-21T10:00:00"))
    assert CODEC.decode_request("MeterValues", payload)["evse_id"] == 1
    request = call.Heartbeat()
    assert CODEC.encode_request(request) == ("Heartbeat", {})
    with pytest.raises(RequestInvalid) as caught:
        CODEC.encode_request(
            call.MeterValues(evse_id=1, meter_value=[{"timestamp": "2026-11-21T10:00:00",
                                                      "sampled_value": [{"value": 1}]}])
        )  # fmt: skip
    assert caught.value.code == "PropertyConstraintViolation"


def test_every_enum_value_of_the_schema_is_accepted() -> None:
    schema = CODEC.catalogue.schemas["MeterValuesRequest"]
    for measurand in schema["definitions"]["MeasurandEnumType"]["enum"]:
        payload = mutated(lambda p, m=measurand: p["meterValue"][0]["sampledValue"][0].update(
            measurand=m))  # fmt: skip
        CODEC.decode_request("MeterValues", payload)
    for near_miss in ["SoC ", "soc", "SoC\n", "Energy.Active.Import.Register.x", "Energy"]:
        payload = mutated(lambda p, m=near_miss: p["meterValue"][0]["sampledValue"][0].update(
            measurand=m))  # fmt: skip
        with pytest.raises(OcppError):
            CODEC.decode_request("MeterValues", payload)


def test_unknown_action_is_not_implemented() -> None:
    with pytest.raises(OcppError) as caught:
        CODEC.decode_request("MakeCoffee", {})
    assert caught.value.code == "NotImplemented"


def test_response_decodes_to_the_call_result_dataclass() -> None:
    result = CODEC.decode_response(
        "BootNotification",
        "m1",
        {"currentTime": "2026-11-21T10:00:00Z", "interval": 300, "status": "Accepted"},
    )
    assert result == call_result.BootNotification(
        current_time="2026-11-21T10:00:00Z", interval=300, status="Accepted"
    )
    with pytest.raises(ResponseInvalid) as caught:
        CODEC.decode_response("BootNotification", "m1", {"interval": 300, "status": "Accepted"})
    assert caught.value.code == "OccurrenceConstraintViolation"


def test_invalid_handler_result_is_an_internal_error() -> None:
    with pytest.raises(OcppError) as caught:
        CODEC.encode_response("BootNotification", call_result.BootNotification(
            current_time="2026-11-21T10:00:00Z", interval=300, status="Maybe"))  # fmt: skip
    assert caught.value.code == "InternalError"
    with pytest.raises(OcppError) as caught:
        CODEC.encode_response("BootNotification", call_result.Heartbeat(current_time="x"))
    assert caught.value.code == "InternalError"


def test_send_only_action_has_a_schema() -> None:
    assert "NotifyPeriodicEventStream" in CODEC.actions
    kwargs = CODEC.decode_request(
        "NotifyPeriodicEventStream",
        {"id": 1, "pending": 0, "basetime": "2026-11-21T10:00:00Z", "data": [{"t": 0.5, "v": "1"}]},
    )
    assert kwargs["basetime"] == "2026-11-21T10:00:00Z"


def test_v201_codec_uses_the_201_schemas() -> None:
    codec = codec_for("ocpp2.0.1")
    assert "NotifyEVChargingNeeds" in codec.actions
    assert "NotifyPeriodicEventStream" not in codec.actions
    assert codec.decode_request("MeterValues", copy.deepcopy(METER_VALUES))["evse_id"] == 1
    only_in_21 = mutated(
        lambda p: p["meterValue"][0]["sampledValue"][0].update(measurand="Power.Active.Setpoint")
    )
    with pytest.raises(OcppError):
        codec.decode_request("MeterValues", only_in_21)
