"""OCPP-J frame codec (RPC framework of OCPP 2.0.1 / 2.1 part 4). Pure: text in, values out.

=====  ================  ===================================================
type   frame             shape
=====  ================  ===================================================
2      CALL              ``[2, messageId, action, {payload}]``
3      CALLRESULT        ``[3, messageId, {payload}]``
4      CALLERROR         ``[4, messageId, errorCode, errorDescription, {errorDetails}]``
5      CALLRESULTERROR   ``[5, messageId, errorCode, errorDescription, {errorDetails}]`` (2.1)
6      SEND              ``[6, messageId, action, {payload}]`` (2.1, never answered)
=====  ================  ===================================================

:func:`decode_frame` raises :class:`~v2g_common.ocpp21.errors.MalformedFrame` with the
code the OCPP-J error table gives:

* not JSON, not a non-empty array, type id not an integer, message id missing or not a
  string -> ``RpcFrameworkError`` ("content is not a valid RPC request, e.g. the message id
  could not be read"); the answer then carries message id ``"-1"`` when none was readable;
* an integer type id other than 2..6 -> ``MessageTypeNotSupported``;
* a known type with the wrong number or kinds of elements -> ``ProtocolError`` ("not
  conform the PDU structure"), with the real message id.

Error frames (4, 5) are read leniently (missing or null details become ``{}``): we only ever
receive them, and a peer's sloppy error should still reach the caller waiting for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from v2g_common.ocpp21.errors import (
    MalformedFrame,
    MessageTypeNotSupported,
    OcppError,
    ProtocolError,
    RpcFrameworkError,
)

__all__ = [
    "UNREADABLE_MESSAGE_ID",
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "Frame",
    "Send",
    "call_error_for",
    "decode_frame",
    "encode_frame",
]

#: Message id of a CALLERROR answering a frame whose own id could not be read.
UNREADABLE_MESSAGE_ID = "-1"


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]
    message_type_id: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]
    message_type_id: ClassVar[int] = 3


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str
    details: dict[str, Any]
    message_type_id: ClassVar[int] = 4


@dataclass(frozen=True, slots=True)
class CallResultError:
    """2.1: the answer to a CALLRESULT its receiver could not accept."""

    message_id: str
    code: str
    description: str
    details: dict[str, Any]
    message_type_id: ClassVar[int] = 5


@dataclass(frozen=True, slots=True)
class Send:
    """2.1: an unconfirmed message; the receiver never answers it."""

    message_id: str
    action: str
    payload: dict[str, Any]
    message_type_id: ClassVar[int] = 6


Frame = Call | CallResult | CallError | CallResultError | Send


def decode_frame(data: str | bytes) -> Frame:
    """One websocket message as a frame value; :class:`MalformedFrame` when it is none."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedFrame(RpcFrameworkError("frame is not valid JSON")) from None
    if type(message) is not list or not message:
        raise MalformedFrame(RpcFrameworkError("frame is not a non-empty JSON array"))
    type_id = message[0]
    message_id = message[1] if len(message) > 1 and type(message[1]) is str else None
    if type(type_id) is not int:
        raise MalformedFrame(
            RpcFrameworkError("message type id is not an integer"), message_id=message_id
        )
    decoder = _DECODERS.get(type_id)
    if decoder is None:
        raise MalformedFrame(
            MessageTypeNotSupported(f"message type {type_id} is not supported"),
            message_id=message_id,
            message_type_id=type_id,
        )
    if message_id is None:
        raise MalformedFrame(
            RpcFrameworkError("message id missing or not a string"), message_type_id=type_id
        )
    return decoder(message, message_id)


def _structure_error(message: list[Any], message_id: str, expected: str) -> MalformedFrame:
    return MalformedFrame(
        ProtocolError(f"frame of type {message[0]} must be {expected}"),
        message_id=message_id,
        message_type_id=message[0],
    )


def _decode_call(message: list[Any], message_id: str) -> Frame:
    if len(message) != 4 or type(message[2]) is not str or type(message[3]) is not dict:
        raise _structure_error(message, message_id, "[2, id, action, {payload}]")
    return Call(message_id, message[2], message[3])


def _decode_send(message: list[Any], message_id: str) -> Frame:
    if len(message) != 4 or type(message[2]) is not str or type(message[3]) is not dict:
        raise _structure_error(message, message_id, "[6, id, action, {payload}]")
    return Send(message_id, message[2], message[3])


def _decode_call_result(message: list[Any], message_id: str) -> Frame:
    if len(message) != 3 or type(message[2]) is not dict:
        raise _structure_error(message, message_id, "[3, id, {payload}]")
    return CallResult(message_id, message[2])


def _decode_error(message: list[Any], message_id: str) -> Frame:
    if not 3 <= len(message) <= 5 or type(message[2]) is not str:
        raise _structure_error(message, message_id, "[4|5, id, code, description, {details}]")
    description = message[3] if len(message) > 3 and type(message[3]) is str else ""
    details = message[4] if len(message) > 4 and type(message[4]) is dict else {}
    frame_class = CallError if message[0] == CallError.message_type_id else CallResultError
    return frame_class(message_id, message[2], description, details)


_DECODERS: dict[int, Callable[[list[Any], str], Frame]] = {
    Call.message_type_id: _decode_call,
    CallResult.message_type_id: _decode_call_result,
    CallError.message_type_id: _decode_error,
    CallResultError.message_type_id: _decode_error,
    Send.message_type_id: _decode_send,
}


def encode_frame(frame: Frame) -> str:
    """The JSON text of a frame (compact, UTF-8 kept as is)."""
    if isinstance(frame, Call | Send):
        body: list[Any] = [frame.message_type_id, frame.message_id, frame.action, frame.payload]
    elif isinstance(frame, CallResult):
        body = [frame.message_type_id, frame.message_id, frame.payload]
    else:
        body = [
            frame.message_type_id,
            frame.message_id,
            frame.code,
            frame.description,
            frame.details,
        ]
    return orjson.dumps(body, default=str).decode()


def call_error_for(error: OcppError | MalformedFrame, message_id: str | None = None) -> CallError:
    """The CALLERROR answering ``error`` (a malformed frame carries its own message id)."""
    if isinstance(error, MalformedFrame):
        message_id, error = error.message_id, error.error
    return CallError(
        message_id if message_id is not None else UNREADABLE_MESSAGE_ID,
        error.code,
        error.description,
        error.details,
    )
