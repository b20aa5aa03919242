"""Payload codec of one protocol version: validate against the shipped schemas, rename keys.

No I/O. One :class:`PayloadCodec` per version is built at import (:func:`codec_for`); the key
shapes of all its schemas are derived then, validators are compiled per action on first use.

* incoming CALL payload  -> :meth:`PayloadCodec.decode_request` -> snake_case kwargs
* outgoing call dataclass -> :meth:`PayloadCodec.encode_request` -> (action, wire payload)
* handler's call_result  -> :meth:`PayloadCodec.encode_response` -> wire payload
* peer's CALLRESULT      -> :meth:`PayloadCodec.decode_response` -> call_result dataclass
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import fastjsonschema

from v2g_common.ocpp21 import errors
from v2g_common.ocpp21.errors import InternalError, OcppError, RequestInvalid, ResponseInvalid
from v2g_common.ocpp21.keymap import (
    ObjectShape,
    ShapeBuilder,
    payload_from_wire,
    payload_to_wire,
)
from v2g_common.ocpp21.schemas import (
    V21,
    V201,
    OcppVersion,
    SchemaCatalogue,
    schema_error,
    version_for_subprotocol,
)

__all__ = ["PayloadCodec", "codec_for"]


class PayloadCodec:
    """Schema validation and key translation for one protocol version."""

    def __init__(self, version: OcppVersion) -> None:
        self.version = version
        self.catalogue = SchemaCatalogue.load(version)
        self.actions = self.catalogue.actions()
        self._shapes: dict[str, ObjectShape | None] = {
            name: self._root_shape(name, schema) for name, schema in self.catalogue.schemas.items()
        }

    def _root_shape(self, name: str, schema: Mapping[str, Any]) -> ObjectShape | None:
        if name.endswith("Response"):
            dataclass = getattr(self.version.call_result, name.removesuffix("Response"), None)
        else:
            dataclass = getattr(self.version.call, name.removesuffix("Request"), None)
        return ShapeBuilder(schema, self.version.datatypes).shape_of(schema, dataclass)

    def shape(self, schema_name: str) -> ObjectShape | None:
        """The key shape of a schema's payload (for tests and tools)."""
        return self._shapes[schema_name]

    # -- incoming -------------------------------------------------------------------------
    def decode_request(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Validate a CALL/SEND payload; the snake_case kwargs for its handler.

        Raises :class:`NotImplemented` for an action without a schema, or the wire error of
        the first schema violation (path in ``details``).
        """
        schema_name = self.catalogue.request_schema_name(action)
        if schema_name is None:
            raise errors.NotImplemented(f"{action} is not an OCPP {self.version.name} action")
        self._validate(schema_name, payload, outgoing=False)
        return payload_from_wire(payload, self._shapes[schema_name])

    def decode_response(self, action: str, message_id: str, payload: dict[str, Any]) -> Any:
        """Validate the peer's CALLRESULT payload; the matching ``call_result`` dataclass."""
        schema_name = self.catalogue.response_schema_name(action)
        result_class = getattr(self.version.call_result, action, None)
        if schema_name is None or result_class is None:
            error = errors.NotImplemented(f"no response for {action}")
            raise ResponseInvalid(action, message_id, error)
        try:
            self._validate(schema_name, payload, outgoing=False)
        except OcppError as error:
            raise ResponseInvalid(action, message_id, error) from None
        kwargs = payload_from_wire(payload, self._shapes[schema_name])
        try:
            return result_class(**kwargs)
        except TypeError as exc:  # a schema key the library's dataclass lacks
            raise ResponseInvalid(action, message_id, InternalError(str(exc))) from exc

    # -- outgoing -------------------------------------------------------------------------
    def encode_request(self, request: Any) -> tuple[str, dict[str, Any]]:
        """A ``call.<Action>`` dataclass as ``(action, wire payload)``; :class:`RequestInvalid`
        when it breaks the schema (nothing may be sent then)."""
        action = type(request).__name__
        schema_name = self.catalogue.request_schema_name(action)
        if schema_name is None or not hasattr(type(request), "__dataclass_fields__"):
            raise RequestInvalid(action, errors.NotImplemented(f"{action} is not an OCPP request"))
        return action, self._encode(action, schema_name, request, RequestInvalid)

    def encode_send(self, action: str, payload: Any) -> dict[str, Any]:
        """The payload of an unconfirmed SEND (2.1), from a dataclass or a snake dict."""
        schema_name = self.catalogue.request_schema_name(action)
        if schema_name is None:
            raise RequestInvalid(action, errors.NotImplemented(f"{action} is not an OCPP message"))
        return self._encode(action, schema_name, payload, RequestInvalid)

    def encode_response(self, action: str, result: Any) -> dict[str, Any]:
        """A handler's ``call_result`` (or snake dict) as a validated wire payload.

        A result that breaks the schema is our bug: it raises :class:`InternalError` (the
        peer gets that CALLERROR rather than data it would reject).
        """
        schema_name = self.catalogue.response_schema_name(action)
        if schema_name is None:
            raise InternalError(f"{action} has no response schema")
        if hasattr(type(result), "__dataclass_fields__") and type(result).__name__ != action:
            raise InternalError(f"handler for {action} returned {type(result).__name__}")
        try:
            return self._encode(action, schema_name, result, None)
        except OcppError as error:
            raise InternalError(f"{action} response invalid: {error.description}") from None

    def _encode(
        self, action: str, schema_name: str, obj: Any, wrap: type[RequestInvalid] | None
    ) -> dict[str, Any]:
        try:
            wire = payload_to_wire(obj, self._shapes[schema_name])
            self._validate(schema_name, wire, outgoing=True)
        except (TypeError, ValueError) as exc:
            error: OcppError = InternalError(f"{action}: {exc}")
            if wrap is None:
                raise error from exc
            raise wrap(action, error) from exc
        except OcppError as error:
            if wrap is None:
                raise
            raise wrap(action, error) from None
        return wire

    def _validate(self, schema_name: str, payload: Any, *, outgoing: bool) -> None:
        validator = self.catalogue.validator(schema_name, outgoing=outgoing)
        try:
            validator(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise schema_error(exc) from None

    def warm_up(self, actions: Iterable[str], *, incoming_calls: bool) -> None:
        """Compile the validators for ``actions`` ahead of time.

        ``incoming_calls=True`` is the receiving side (their requests in, our responses
        out); ``False`` the calling side (our requests out, their responses in).
        """
        for action in actions:
            request = self.catalogue.request_schema_name(action)
            response = self.catalogue.response_schema_name(action)
            if request is not None:
                self.catalogue.validator(request, outgoing=not incoming_calls)
            if response is not None:
                self.catalogue.validator(response, outgoing=incoming_calls)


_CODECS: dict[str, PayloadCodec] = {v.subprotocol: PayloadCodec(v) for v in (V21, V201)}


def codec_for(subprotocol: str | None) -> PayloadCodec:
    """The codec for a negotiated subprotocol (``UnsupportedSubprotocol`` if none fits)."""
    return _CODECS[version_for_subprotocol(subprotocol).subprotocol]
