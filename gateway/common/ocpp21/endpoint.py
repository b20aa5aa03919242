"""One OCPP-J connection, either role: a receive loop, ``@on`` handlers, correlated calls.

:meth:`OcppEndpoint.run` owns two tasks (an ``asyncio.TaskGroup``): the *receive loop*
decodes every frame, hands answers (CALLRESULT / CALLERROR / CALLRESULTERROR) to the
:meth:`OcppEndpoint.call` waiting for them at once, and queues CALLs and SENDs for the
*handler task*, which runs handlers one at a time in arrival order. So a handler (or an
``@after`` hook) may itself ``await self.call(...)`` without dead-locking, and a peer that
floods CALLs is back-pressured by a small bounded queue instead of growing memory.

What a peer gets (OCPP-J 2.0.1 / 2.1 part 4):

* a CALL whose action has no ``@on`` handler, or is no action at all: CALLERROR
  ``NotImplemented``;
* a malformed frame: CALLERROR per :mod:`gateway.common.ocpp21.frames` (message id ``"-1"``
  when unreadable); never for answers or SENDs, which are not answered;
* a CALL failing schema validation: CALLERROR with the constraint's code and the real id;
* a handler raising an :class:`OcppError`: that CALLERROR; any other exception:
  ``InternalError`` (logged with its traceback the first time per action and type);
* a SEND: its handler runs, nothing is answered;
* a CALLRESULT nobody waits for (late, unknown id): logged and ignored.
The connection stays open in every case.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from websockets.exceptions import ConnectionClosed

from gateway.common.ocpp21 import errors
from gateway.common.ocpp21.errors import (
    InternalError,
    MalformedFrame,
    OcppCallError,
    OcppConnectionClosed,
    OcppError,
    OcppTimeout,
    ProtocolError,
    ResponseInvalid,
    UnsupportedSubprotocol,
)
from gateway.common.ocpp21.frames import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    Frame,
    Send,
    call_error_for,
    decode_frame,
    encode_frame,
)
from gateway.common.ocpp21.payloads import PayloadCodec, codec_for

__all__ = ["ChargingStationEndpoint", "CsmsEndpoint", "OcppEndpoint", "after", "on"]

LOGGER = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
_CLOSED = (ConnectionClosed, EOFError)
_ANSWER_TYPES = (CallResult.message_type_id, CallError.message_type_id, 5)


def on(action: str) -> Callable[[F], F]:
    """Mark a method of an endpoint subclass as the handler of incoming CALL/SEND ``action``.

    The handler gets the payload as snake_case keyword arguments (nested objects as snake
    dicts), plus ``call_unique_id`` if it declares that parameter, and returns the
    ``call_result.<Action>`` dataclass (ignored for a SEND). Without ``**kwargs`` it gets
    only the parameters it declares.
    """

    def mark(func: F) -> F:
        func._ocpp_on = action  # type: ignore[attr-defined]
        return func

    return mark


def after(action: str) -> Callable[[F], F]:
    """Mark a method to run after the answer to ``action`` was sent (same kwargs as ``on``)."""

    def mark(func: F) -> F:
        func._ocpp_after = action  # type: ignore[attr-defined]
        return func

    return mark


@dataclass(frozen=True)
class _Route:
    func: Callable[..., Any]
    is_async: bool
    wants_unique_id: bool
    accepted: frozenset[str] | None  # None: the handler takes **kwargs

    @classmethod
    def of(cls, func: Callable[..., Any]) -> _Route:
        parameters = inspect.signature(func).parameters
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        return cls(
            func=func,
            is_async=inspect.iscoroutinefunction(func),
            wants_unique_id="call_unique_id" in parameters,
            accepted=None if var_kw else frozenset(parameters) - {"self", "call_unique_id"},
        )


def _collect_routes(cls: type) -> tuple[dict[str, _Route], dict[str, _Route]]:
    on_routes: dict[str, _Route] = {}
    after_routes: dict[str, _Route] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if action := getattr(value, "_ocpp_on", None):
                on_routes[action] = _Route.of(value)
            if action := getattr(value, "_ocpp_after", None):
                after_routes[action] = _Route.of(value)
    return on_routes, after_routes


class OcppEndpoint:
    """Base of both roles; subclass it and decorate handlers with :func:`on`.

    ``connection`` needs ``async recv() -> str | bytes``, ``async send(str)`` and
    ``subprotocol`` (``"ocpp2.1"`` or ``"ocpp2.0.1"``, which picks schemas and dataclasses):
    a websockets 17 asyncio connection, or a test double whose ``recv`` raises
    ``websockets.exceptions.ConnectionClosed`` or ``EOFError`` when it is closed.
    """

    #: CALLs and SENDs received but not yet handled; a full queue stops reading the socket.
    incoming_queue_size: ClassVar[int] = 16
    _on_routes: ClassVar[dict[str, _Route]] = {}
    _after_routes: ClassVar[dict[str, _Route]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._on_routes, cls._after_routes = _collect_routes(cls)

    def __init__(self, identity: str, connection: Any, *, response_timeout_s: float = 30.0):
        self.identity = identity
        self.response_timeout_s = response_timeout_s
        self._connection = connection
        self._codec: PayloadCodec = codec_for(getattr(connection, "subprotocol", None))
        self.subprotocol: str = self._codec.version.subprotocol
        self._speaks_21 = self.subprotocol == "ocpp2.1"
        self._pending: dict[str, tuple[str, asyncio.Future[Frame]]] = {}
        self._call_lock = asyncio.Lock()
        self._incoming: asyncio.Queue[Call | Send | None] = asyncio.Queue(self.incoming_queue_size)
        self._logged: set[tuple[str, ...]] = set()
        self._closed = False
        self.new_message_id: Callable[[], str] = lambda: str(uuid.uuid4())

    @classmethod
    def warm_up(cls, subprotocol: str, *, calls: Iterable[str] = ()) -> None:
        """Compile the validators this role needs now instead of on the first message.

        Covers the actions with handlers (their requests in, our answers out) and ``calls``
        (the actions this side sends).
        """
        codec = codec_for(subprotocol)
        codec.warm_up(cls._on_routes, incoming_calls=True)
        codec.warm_up(calls, incoming_calls=False)

    # -- receiving ------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it closes (then pending calls fail, queued CALLs drop)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._serve_incoming(), name=f"ocpp-handlers[{self.identity}]")
            try:
                await self._receive_loop()
            finally:
                self._shut_down()

    async def _receive_loop(self) -> None:
        while True:
            try:
                data = await self._connection.recv()
            except _CLOSED:
                return
            await self._route(data, inline=False)

    async def route_message(self, data: str | bytes) -> None:
        """Process one received frame now, in the caller's task (handlers included).

        The same path as :meth:`run` minus the handler queue; for tools, tests and the
        codec benchmark. A handler that awaits :meth:`call` must not be driven this way.
        """
        await self._route(data, inline=True)

    async def _route(self, data: str | bytes, *, inline: bool) -> None:
        try:
            frame = decode_frame(data)
        except MalformedFrame as malformed:
            await self._reject_malformed(malformed)
            return
        if frame.message_type_id > CallError.message_type_id and not self._speaks_21:
            await self._reject_malformed(_not_in_201(frame))
        elif isinstance(frame, Call | Send):
            if inline:
                await self._handle_incoming(frame)
            else:
                await self._incoming.put(frame)
        else:
            self._take_answer(frame)

    async def _reject_malformed(self, malformed: MalformedFrame) -> None:
        self._log_limited(("malformed", malformed.code), "%s: malformed frame: %s", malformed)
        if malformed.message_type_id in _ANSWER_TYPES:
            self._fail_pending(malformed)
        elif malformed.message_type_id != Send.message_type_id:
            await self._send_frame(call_error_for(malformed))

    def _fail_pending(self, malformed: MalformedFrame) -> None:
        pending = self._pending.get(malformed.message_id or "")
        if pending is not None and not pending[1].done():
            action = pending[0]
            error = ProtocolError(malformed.error.description)
            pending[1].set_exception(ResponseInvalid(action, malformed.message_id or "", error))

    def _take_answer(self, frame: CallResult | CallError | CallResultError) -> None:
        pending = self._pending.get(frame.message_id)
        if pending is None or pending[1].done():  # late (after a timeout) or never asked
            self._log_limited(("stray",), "%s: ignored answer %s: no call waits", frame.message_id)
            return
        pending[1].set_result(frame)

    async def _serve_incoming(self) -> None:
        while (frame := await self._incoming.get()) is not None:
            await self._handle_incoming(frame)

    async def _handle_incoming(self, frame: Call | Send) -> None:
        if isinstance(frame, Call):
            await self._answer_call(frame)
        else:
            await self._take_send(frame)

    async def _answer_call(self, frame: Call) -> None:
        route = self._on_routes.get(frame.action)
        if route is None:
            error = errors.NotImplemented(f"no handler for {frame.action!r}")
            await self._send_frame(call_error_for(error, frame.message_id))
            return
        try:
            kwargs = self._codec.decode_request(frame.action, frame.payload)
            result = await self._invoke(route, kwargs, frame.message_id)
            payload = self._codec.encode_response(frame.action, result)
        except OcppError as error:
            kind = "internal" if isinstance(error, InternalError) else "refused"
            self._log_limited((kind, frame.action), "%s: %s answered %s", frame.action, error)
            await self._send_frame(call_error_for(error, frame.message_id))
            return
        except Exception as exc:
            self._log_handler_failure(frame.action, exc)
            await self._send_frame(call_error_for(InternalError(), frame.message_id))
            return
        await self._send_frame(CallResult(frame.message_id, payload))
        await self._run_after(frame, kwargs)

    async def _run_after(self, frame: Call, kwargs: dict[str, Any]) -> None:
        route = self._after_routes.get(frame.action)
        if route is None:
            return
        try:
            await self._invoke(route, kwargs, frame.message_id)
        except Exception as exc:
            self._log_handler_failure(frame.action + " (after)", exc)

    async def _take_send(self, frame: Send) -> None:
        """A SEND is never answered: errors are logged, the payload is dropped."""
        route = self._on_routes.get(frame.action)
        if route is None:
            self._log_limited(("send-unrouted",), "%s: no handler for SEND %s", frame.action)
            return
        try:
            kwargs = self._codec.decode_request(frame.action, frame.payload)
            await self._invoke(route, kwargs, frame.message_id)
        except OcppError as error:
            self._log_limited(("send", frame.action), "%s: SEND %s: %s", frame.action, error)
        except Exception as exc:
            self._log_handler_failure(frame.action, exc)

    async def _invoke(self, route: _Route, kwargs: dict[str, Any], message_id: str) -> Any:
        if route.accepted is not None:
            kwargs = {k: v for k, v in kwargs.items() if k in route.accepted}
        if route.wants_unique_id:
            kwargs = {**kwargs, "call_unique_id": message_id}
        result = route.func(self, **kwargs)
        if route.is_async or inspect.isawaitable(result):
            result = await result
        return result

    def _shut_down(self) -> None:
        self._closed = True
        for action, future in self._pending.values():
            if not future.done():
                future.set_exception(OcppConnectionClosed(f"{self.identity}: closed ({action})"))
        dropped = 0
        while not self._incoming.empty():
            self._incoming.get_nowait()
            dropped += 1
        if dropped:
            LOGGER.info("%s: closed with %d unanswered CALL(s) dropped", self.identity, dropped)
        self._incoming.put_nowait(None)

    # -- calling --------------------------------------------------------------------------
    async def call(self, request: Any, *, timeout_s: float | None = None) -> Any:
        """Send ``call.<Action>`` and return the peer's ``call_result.<Action>``.

        Raises :class:`RequestInvalid` (nothing sent) when the request breaks its schema,
        :class:`OcppCallError` on a CALLERROR / CALLRESULTERROR, :class:`OcppTimeout` when
        no answer arrives within ``timeout_s`` (default ``response_timeout_s``, counted from
        the call, including the wait for an earlier call to finish: one CALL is in flight
        at a time), :class:`ResponseInvalid` when the answer breaks its schema (2.1 peers
        are then told with a CALLRESULTERROR) and :class:`OcppConnectionClosed`.
        """
        action, payload = self._codec.encode_request(request)
        message_id = self.new_message_id()
        text = encode_frame(Call(message_id, action, payload))
        timeout = self.response_timeout_s if timeout_s is None else timeout_s
        answer = await self._exchange(action, message_id, text, timeout)
        if type(answer) is CallResult:
            return await self._result_of(action, answer)
        assert isinstance(answer, CallError | CallResultError)
        raise OcppCallError(
            action=action,
            message_id=message_id,
            code=answer.code,
            description=answer.description,
            details=answer.details,
            message_type_id=answer.message_type_id,
        )

    async def _exchange(self, action: str, message_id: str, text: str, limit_s: float) -> Frame:
        if self._closed:
            raise OcppConnectionClosed(f"{self.identity}: closed, {action} not sent")
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        sent = False
        try:
            async with asyncio.timeout(limit_s), self._call_lock:
                self._pending[message_id] = (action, future)
                await self._connection.send(text)
                sent = True
                return await future
        except TimeoutError:
            raise OcppTimeout(
                action=action, message_id=message_id, timeout_s=limit_s, sent=sent
            ) from None
        except ConnectionClosed as exc:
            raise OcppConnectionClosed(f"{self.identity}: closed, {action} not sent") from exc
        finally:
            self._pending.pop(message_id, None)

    async def _result_of(self, action: str, answer: CallResult) -> Any:
        try:
            return self._codec.decode_response(action, answer.message_id, answer.payload)
        except ResponseInvalid as invalid:
            if self._speaks_21:
                error = invalid.error
                await self._send_frame(
                    CallResultError(answer.message_id, error.code, error.description, error.details)
                )
            raise

    async def send(self, action: str, payload: Any) -> str:
        """Send an unconfirmed SEND (OCPP 2.1 only); returns its message id."""
        if not self._speaks_21:
            raise UnsupportedSubprotocol(f"SEND needs ocpp2.1, connection is {self.subprotocol}")
        wire = self._codec.encode_send(action, payload)
        message_id = self.new_message_id()
        await self._connection.send(encode_frame(Send(message_id, action, wire)))
        return message_id

    # -- plumbing -------------------------------------------------------------------------
    async def _send_frame(self, frame: Frame) -> None:
        try:
            await self._connection.send(encode_frame(frame))
        except ConnectionClosed:
            LOGGER.debug("%s: closed before %s could be sent", self.identity, frame)

    def _log_handler_failure(self, action: str, exc: Exception) -> None:
        key = ("handler", action, type(exc).__name__)
        if key in self._logged:
            LOGGER.debug("%s: handler for %s failed again: %r", self.identity, action, exc)
            return
        self._logged.add(key)
        LOGGER.error(
            "%s: handler for %s failed (answered InternalError; repeats logged at debug)",
            self.identity,
            action,
            exc_info=exc,
        )

    def _log_limited(self, key: tuple[str, ...], message: str, *args: Any) -> None:
        """WARNING the first time per key and connection, DEBUG after (a peer may flood)."""
        level = logging.DEBUG if key in self._logged else logging.WARNING
        self._logged.add(key)
        LOGGER.log(level, message, self.identity, *args)


def _not_in_201(frame: Frame) -> MalformedFrame:
    """Types 5 and 6 exist from OCPP 2.1 on; a 2.0.1 peer gets MessageTypeNotSupported."""
    return MalformedFrame(
        errors.MessageTypeNotSupported(f"message type {frame.message_type_id} is not in 2.0.1"),
        message_id=frame.message_id,  # no type id: answered like any unknown type
    )


class ChargingStationEndpoint(OcppEndpoint):
    """The charging-station role (edge side): its peer is a CSMS."""


class CsmsEndpoint(OcppEndpoint):
    """The CSMS side of one station's connection: its peer is a charging station."""
