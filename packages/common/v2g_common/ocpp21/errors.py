"""Typed errors of the OCPP adapter.

Two families:

* :class:`OcppError` and its subclasses are *wire* errors: each carries the OCPP-J error code
  it becomes on the wire. A handler raises one to answer a CALL with that CALLERROR; the codec
  raises them for payloads that fail schema validation.
* The rest (:class:`OcppCallError`, :class:`OcppTimeout`, :class:`RequestInvalid`, ...) are
  what a *caller* of :meth:`OcppEndpoint.call` sees.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "FormatViolation",
    "GenericError",
    "InternalError",
    "InvalidIdentity",
    "MalformedFrame",
    "MessageTypeNotSupported",
    "NotImplemented",
    "NotSupported",
    "OccurrenceConstraintViolation",
    "OcppAdapterError",
    "OcppCallError",
    "OcppConnectionClosed",
    "OcppError",
    "OcppTimeout",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RequestInvalid",
    "ResponseInvalid",
    "RpcFrameworkError",
    "SecurityError",
    "SubprotocolNotNegotiated",
    "TypeConstraintViolation",
    "UnsupportedSubprotocol",
    "error_class_for_code",
]


class OcppError(Exception):
    """An error with an OCPP-J wire code; raised by a handler it becomes that CALLERROR."""

    code: ClassVar[str] = "GenericError"
    default_description: ClassVar[str] = "Any other error not covered by the other codes"

    def __init__(self, description: str | None = None, details: dict[str, Any] | None = None):
        self.description = description if description is not None else self.default_description
        self.details: dict[str, Any] = details if details is not None else {}
        super().__init__(f"{self.code}: {self.description}")


# Descriptions are the OCPP-J 2.0.1 / 2.1 table (the ocpp package swaps the two "Not..." texts).
class FormatViolation(OcppError):
    code = "FormatViolation"
    default_description = "Payload for Action is syntactically incorrect"


class GenericError(OcppError):
    code = "GenericError"
    default_description = "Any other error not covered by the more specific error codes"


class InternalError(OcppError):
    code = "InternalError"
    default_description = (
        "An internal error occurred and the receiver was not able to process the requested "
        "Action successfully"
    )


class MessageTypeNotSupported(OcppError):
    code = "MessageTypeNotSupported"
    default_description = "A message with a Message Type Id not supported by this implementation"


class NotImplemented(OcppError):
    code = "NotImplemented"
    default_description = "Requested Action is not known by receiver"


class NotSupported(OcppError):
    code = "NotSupported"
    default_description = "Requested Action is recognized but not supported by the receiver"


class OccurrenceConstraintViolation(OcppError):
    code = "OccurrenceConstraintViolation"
    default_description = (
        "Payload for Action is syntactically correct but at least one of the fields violates "
        "occurrence constraints"
    )


class PropertyConstraintViolation(OcppError):
    code = "PropertyConstraintViolation"
    default_description = (
        "Payload is syntactically correct but at least one field contains an invalid value"
    )


class ProtocolError(OcppError):
    code = "ProtocolError"
    default_description = "Payload for Action is not conform the PDU structure"


class RpcFrameworkError(OcppError):
    code = "RpcFrameworkError"
    default_description = "Content of the call is not a valid RPC Request"


class SecurityError(OcppError):
    code = "SecurityError"
    default_description = (
        "During the processing of Action a security issue occurred preventing receiver from "
        "completing the Action successfully"
    )


class TypeConstraintViolation(OcppError):
    code = "TypeConstraintViolation"
    default_description = (
        "Payload for Action is syntactically correct but at least one of the fields violates "
        "data type constraints"
    )


_BY_CODE: dict[str, type[OcppError]] = {
    cls.code: cls
    for cls in (
        FormatViolation,
        GenericError,
        InternalError,
        MessageTypeNotSupported,
        NotImplemented,
        NotSupported,
        OccurrenceConstraintViolation,
        PropertyConstraintViolation,
        ProtocolError,
        RpcFrameworkError,
        SecurityError,
        TypeConstraintViolation,
    )
}


def error_class_for_code(code: str) -> type[OcppError]:
    """The :class:`OcppError` subclass for a wire code (:class:`GenericError` if unknown)."""
    return _BY_CODE.get(code, GenericError)


class MalformedFrame(Exception):
    """A frame that is not a valid OCPP-J message; carries what the CALLERROR needs.

    ``message_id`` is ``None`` when it could not be read (the answer then uses ``"-1"``);
    ``message_type_id`` is the type id when it could be read (an answer is due only for a
    CALL, or when the type is unknown or unreadable).
    """

    def __init__(
        self,
        error: OcppError,
        *,
        message_id: str | None = None,
        message_type_id: int | None = None,
    ) -> None:
        self.error = error
        self.code = error.code
        self.message_id = message_id
        self.message_type_id = message_type_id
        super().__init__(f"{error.code}: {error.description} (message id {message_id!r})")


class OcppAdapterError(Exception):
    """Base of the errors a user of the endpoint sees that are not wire errors."""


class OcppCallError(OcppAdapterError):
    """The peer answered our CALL with a CALLERROR (4) or a CALLRESULTERROR (5)."""

    def __init__(
        self,
        *,
        action: str,
        message_id: str,
        code: str,
        description: str,
        details: dict[str, Any],
        message_type_id: int = 4,
    ) -> None:
        self.action = action
        self.message_id = message_id
        self.code = code
        self.description = description
        self.details = details
        self.message_type_id = message_type_id
        super().__init__(f"{action} [{message_id}] answered {code}: {description} {details}")


class OcppTimeout(OcppAdapterError, TimeoutError):
    """No answer to our CALL within the timeout; ``sent`` says whether it left at all."""

    def __init__(self, *, action: str, message_id: str, timeout_s: float, sent: bool) -> None:
        self.action = action
        self.message_id = message_id
        self.timeout_s = timeout_s
        self.sent = sent
        super().__init__(f"{action} [{message_id}]: no answer within {timeout_s} s (sent={sent})")


class OcppConnectionClosed(OcppAdapterError):
    """The connection closed while our CALL was waiting for its answer."""


class RequestInvalid(OcppAdapterError, ValueError):
    """An outgoing request failed schema validation; nothing was sent.

    ``error`` is the wire error the peer would have answered with (its ``details`` name the
    offending path).
    """

    def __init__(self, action: str, error: OcppError) -> None:
        self.action = action
        self.error = error
        self.code = error.code
        super().__init__(f"{action} request invalid: {error.code}: {error.description}")


class ResponseInvalid(OcppAdapterError):
    """The peer's CALLRESULT to our CALL failed schema validation."""

    def __init__(self, action: str, message_id: str, error: OcppError) -> None:
        self.action = action
        self.message_id = message_id
        self.error = error
        self.code = error.code
        super().__init__(f"{action} [{message_id}] response invalid: {error.description}")


class UnsupportedSubprotocol(OcppAdapterError, ValueError):
    """The connection's subprotocol is none this adapter speaks."""


class SubprotocolNotNegotiated(OcppAdapterError):
    """The CSMS accepted the websocket but picked none of the offered subprotocols."""


class InvalidIdentity(OcppAdapterError, ValueError):
    """A station identity that cannot go into the URL / Basic-auth user name."""
