"""The pure OCPP-J frame codec: exact text in, values out, and typed errors for garbage."""

from __future__ import annotations

import pytest

from v2g_common.ocpp21.errors import MalformedFrame
from v2g_common.ocpp21.frames import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    Send,
    call_error_for,
    decode_frame,
    encode_frame,
)

WELL_FORMED = [
    ('[2,"19223201","Heartbeat",{}]', Call("19223201", "Heartbeat", {})),
    ('[3,"19223201",{"currentTime":"2026-01-01T00:00:00Z"}]',
     CallResult("19223201", {"currentTime": "2026-01-01T00:00:00Z"})),
    ('[4,"7","NotImplemented","no handler",{"a":1}]',
     CallError("7", "NotImplemented", "no handler", {"a": 1})),
    ('[5,"7","FormatViolation","bad result",{}]',
     CallResultError("7", "FormatViolation", "bad result", {})),
    ('[6,"8","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"x","data":[]}]',
     Send("8", "NotifyPeriodicEventStream", {"id": 1, "pending": 0, "basetime": "x", "data": []})),
    # lenient on received errors: details missing or null
    ('[4,"9","GenericError","oops"]', CallError("9", "GenericError", "oops", {})),
    ('[4,"9","GenericError","oops",null]', CallError("9", "GenericError", "oops", {})),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), WELL_FORMED)
def test_decodes_every_message_type(text: str, expected: object) -> None:
    assert decode_frame(text) == expected
    assert decode_frame(text.encode()) == expected  # a binary frame with the same bytes


@pytest.mark.parametrize(
    "frame",
    [
        Call("1", "Heartbeat", {}),
        CallResult("1", {"status": "Accepted"}),
        CallError("1", "InternalError", "x", {}),
        CallResultError("1", "FormatViolation", "x", {"path": "payload"}),
        Send("1", "NotifyPeriodicEventStream", {"id": 1}),
    ],
)
def test_encode_is_compact_and_round_trips(frame: object) -> None:
    text = encode_frame(frame)  # type: ignore[arg-type]
    assert ", " not in text
    assert ": " not in text
    assert decode_frame(text) == frame


def test_encode_exact_bytes() -> None:
    assert encode_frame(Call("a1", "Heartbeat", {})) == '[2,"a1","Heartbeat",{}]'
    assert encode_frame(CallError("a1", "NotImplemented", "d", {})) == (
        '[4,"a1","NotImplemented","d",{}]'
    )
    assert encode_frame(CallResult("a1", {"evseId": 1})) == '[3,"a1",{"evseId":1}]'
    assert encode_frame(Call("é", "DataTransfer", {"data": "ü"})) == (
        '[2,"é","DataTransfer",{"data":"ü"}]'
    )


MALFORMED = [
    # text, code, message id read, message type id read
    ("not json at all", "RpcFrameworkError", None, None),
    ("", "RpcFrameworkError", None, None),
    ('{"a": 1}', "RpcFrameworkError", None, None),
    ("[]", "RpcFrameworkError", None, None),
    ('"just a string"', "RpcFrameworkError", None, None),
    ('["2","id","Heartbeat",{}]', "RpcFrameworkError", "id", None),
    ('[true,"id","Heartbeat",{}]', "RpcFrameworkError", "id", None),
    ("[2]", "RpcFrameworkError", None, 2),
    ('[2,17,"Heartbeat",{}]', "RpcFrameworkError", None, 2),
    ('[9,"id","Heartbeat",{}]', "MessageTypeNotSupported", "id", 9),
    ("[1]", "MessageTypeNotSupported", None, 1),
    ('[2,"id","Heartbeat"]', "ProtocolError", "id", 2),
    ('[2,"id",42,{}]', "ProtocolError", "id", 2),
    ('[2,"id","Heartbeat",[]]', "ProtocolError", "id", 2),
    ('[2,"id","Heartbeat",{},"extra"]', "ProtocolError", "id", 2),
    ('[3,"id"]', "ProtocolError", "id", 3),
    ('[3,"id","payload"]', "ProtocolError", "id", 3),
    ('[4,"id",5,"d",{}]', "ProtocolError", "id", 4),
    ('[6,"id","NotifyPeriodicEventStream"]', "ProtocolError", "id", 6),
]


@pytest.mark.parametrize(("text", "code", "message_id", "type_id"), MALFORMED)
def test_malformed_frames_raise_typed_errors(
    text: str, code: str, message_id: str | None, type_id: int | None
) -> None:
    with pytest.raises(MalformedFrame) as caught:
        decode_frame(text)
    assert caught.value.code == code
    assert caught.value.message_id == message_id
    assert caught.value.message_type_id == type_id


def test_call_error_for_unreadable_id_uses_minus_one() -> None:
    with pytest.raises(MalformedFrame) as caught:
        decode_frame("garbage")
    answer = call_error_for(caught.value)
    assert answer.message_id == "-1"
    assert answer.code == "RpcFrameworkError"
    assert decode_frame(encode_frame(answer)) == answer


def test_call_error_for_readable_id_keeps_it() -> None:
    with pytest.raises(MalformedFrame) as caught:
        decode_frame('[2,"abc","Heartbeat",7]')
    assert call_error_for(caught.value).message_id == "abc"
