"""The key map is derived from the shipped schemas and is right for every key of every object."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

from v2g_common.ocpp21.keymap import ObjectShape, payload_from_wire, payload_to_wire
from v2g_common.ocpp21.payloads import codec_for

SUBPROTOCOLS = ["ocpp2.1", "ocpp2.0.1"]


def walk(shape: ObjectShape | None, seen: set[int]) -> Iterator[ObjectShape]:
    if shape is None or id(shape) in seen:
        return
    seen.add(id(shape))
    yield shape
    for _name, child in shape.from_wire.values():
        yield from walk(child, seen)


def all_shapes(subprotocol: str) -> Iterator[tuple[str, ObjectShape]]:
    codec = codec_for(subprotocol)
    seen: set[int] = set()
    for schema_name in codec.catalogue.schemas:
        for shape in walk(codec.shape(schema_name), seen):
            yield schema_name, shape


def library_round_trip(key: str) -> str:
    snake = next(iter(camel_to_snake_case({key: 0})))
    return next(iter(snake_to_camel_case({snake: 0})))


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
def test_every_key_round_trips_through_its_python_name(subprotocol: str) -> None:
    checked = 0
    for schema_name, shape in all_shapes(subprotocol):
        for key, (name, child) in shape.from_wire.items():
            assert shape.to_wire[name] == (key, child), (schema_name, shape.name, key)
            assert shape.to_wire[key] == (key, child), "the wire spelling passes too"
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
def test_python_names_are_the_library_dataclass_fields(subprotocol: str) -> None:
    codec = codec_for(subprotocol)
    for action in sorted(codec.actions):
        request_class = getattr(codec.version.call, action, None)
        if request_class is None:  # SEND-only messages have no dataclass
            continue
        shape = codec.shape(codec.catalogue.request_schema_name(action) or "")
        assert shape is not None
        fields = {f.name for f in dataclasses.fields(request_class)}
        assert {name for name, _ in shape.from_wire.values()} == fields, action


def test_the_keys_the_library_breaks_are_all_mapped_right() -> None:
    """The set of broken keys is computed, not listed: every one comes out right here."""
    broken: set[str] = set()
    for _schema, shape in all_shapes("ocpp2.1"):
        for key, (name, _child) in shape.from_wire.items():
            if library_round_trip(key) != key:
                broken.add(key)
                assert shape.to_wire[name][0] == key
    assert len(broken) == 43  # the figure in OCPP21-V2X.md; more would mean a new release
    assert {"limit_L2", "setpoint_L3", "dischargeLimit_L2", "maxDischargePower_L2", "soc"} <= broken


def test_same_python_name_maps_by_context() -> None:
    """``soc`` is ``soc`` in LimitAtSoCType but ``soC`` in BatteryDataType: no flat table."""
    codec = codec_for("ocpp2.1")
    battery = codec.shape("BatterySwapRequest").from_wire["batteryData"][1]  # type: ignore[union-attr]
    assert battery is not None
    assert battery.to_wire["soc"][0] == "soC"
    profile = codec.shape("SetChargingProfileRequest").from_wire["chargingProfile"][1]  # type: ignore[union-attr]
    schedule = profile.from_wire["chargingSchedule"][1]  # type: ignore[union-attr]
    limit_at_soc = schedule.from_wire["limitAtSoC"][1]  # type: ignore[union-attr]
    assert limit_at_soc.to_wire["soc"][0] == "soc"  # type: ignore[union-attr]


def test_unknown_keys_pass_unchanged_out_and_library_style_in() -> None:
    codec = codec_for("ocpp2.1")
    shape = codec.shape("DataTransferRequest")
    wire = payload_to_wire({"vendor_id": "acme", "custom_data": {"vendorId": "acme", "myKey": 1}},
                           shape)  # fmt: skip
    assert wire == {"vendorId": "acme", "customData": {"vendorId": "acme", "myKey": 1}}
    assert payload_from_wire(wire, shape) == {
        "vendor_id": "acme",
        "custom_data": {"vendor_id": "acme", "my_key": 1},
    }


def test_none_values_are_dropped_recursively_and_enums_sent_as_values() -> None:
    from ocpp.v21 import datatypes, enums

    codec = codec_for("ocpp2.1")
    status = datatypes.StatusInfoType(reason_code="x", additional_info=None)
    wire = payload_to_wire(
        {"status": enums.GenericStatusEnumType.accepted, "status_info": status, "x": None},
        codec.shape("SetChargingProfileResponse"),
    )
    assert wire == {"status": "Accepted", "statusInfo": {"reasonCode": "x"}}
    assert type(wire["status"]) is str
