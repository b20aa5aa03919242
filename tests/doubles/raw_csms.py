"""A CSMS test double built only from raw ``websockets``, ``json`` and ``jsonschema``: none of
our OCPP adapter, none of the ``ocpp`` package's code (only its shipped OCA JSON schemas).

Every frame a station sends is checked against the OCA 2.1 (or 2.0.1) schemas: CALL payloads
against ``<Action>Request.json``, CALLRESULT payloads against ``<Action>Response.json`` of
the CALL the double sent, CALLERROR frames against the RPC framework's shape. Problems are
collected in :attr:`RawCsms.violations` (tests assert it stays empty).

Scripted behaviour: default answers for the station's CALLs (overridable per action with
:meth:`RawCsms.answer`), :meth:`RawCsms.call` to send a CALL and await its answer,
:meth:`RawCsms.send_raw` for malformed frames, :meth:`RawCsms.cut` to drop the TCP link
mid-session, ``refuse`` to turn further connection attempts away.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tests.doubles.loopback import LoopbackServer, basic_auth_refusal, peer_certificate
from tests.doubles.oca_schemas import SchemaBook


@dataclass
class Frame:
    """One frame on the wire, parsed; ``direction`` is ``"in"`` (from the station) or ``"out"``."""

    direction: str
    message: list[Any]
    connection: int

    @property
    def kind(self) -> int:
        return int(self.message[0])

    @property
    def action(self) -> str | None:
        return self.message[2] if self.kind == 2 else None

    @property
    def payload(self) -> Any:
        return self.message[3] if self.kind == 2 else self.message[2]


class CallErrorReceived(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


@dataclass(frozen=True)
class CallErrorReply:
    """Return this from an answer function to send a CALLERROR instead of a CALLRESULT."""

    code: str = "InternalError"
    description: str = "scripted failure"


Answer = Callable[[dict[str, Any]], "dict[str, Any] | CallErrorReply"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


DEFAULT_ANSWERS: dict[str, Answer] = {
    "BootNotification": lambda p: {"currentTime": _now(), "interval": 300, "status": "Accepted"},
    "Heartbeat": lambda p: {"currentTime": _now()},
    "StatusNotification": lambda p: {},
    "TransactionEvent": lambda p: {},
    "NotifyEVChargingNeeds": lambda p: {"status": "Accepted"},
    "ReportChargingProfiles": lambda p: {},
    "MeterValues": lambda p: {},
    "NotifyReport": lambda p: {},
}


class RawCsms(LoopbackServer):
    """Use as ``async with RawCsms(...) as csms`` ; ``csms.url`` is the endpoint to configure."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        passwords: dict[str, str] | None = None,
        subprotocols: tuple[str, ...] = ("ocpp2.1", "ocpp2.0.1"),
    ) -> None:
        super().__init__(ssl_context=ssl_context, subprotocols=subprotocols)
        self._passwords = passwords
        self.frames: list[Frame] = []
        self.violations: list[str] = []
        self.answers: dict[str, Answer] = dict(DEFAULT_ANSWERS)
        self.refuse = False
        self.require_client_cn = False
        #: Read but never answer the station's CALLs (a CSMS or link gone silent).
        self.mute = False
        self.attempts = 0
        self.connections = 0
        self.identities: list[str] = []
        self._current: ServerConnection | None = None
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._sent_actions: dict[str, str] = {}
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self.connected = asyncio.Event()

    @property
    def subprotocol(self) -> str | None:
        return None if self._current is None else self._current.subprotocol

    # --- scripting -------------------------------------------------------------------------
    def answer(self, action: str, answer: Answer) -> None:
        self.answers[action] = answer

    def calls(self, action: str) -> list[dict[str, Any]]:
        """Payloads of every CALL ``action`` the station sent, in arrival order."""
        return [f.payload for f in self.frames if f.direction == "in" and f.action == action]

    def delivered_transaction_events(self) -> tuple[list[dict[str, Any]], int]:
        """TransactionEvents as a CSMS application sees them: one per (transactionId, seqNo)
        in arrival order, plus how many resends were dropped. A resend happens when a link
        is cut after the CSMS answered but before the station read the answer (delivery is
        at-least-once); it must be identical to the first copy."""
        seen: dict[tuple[str, int], dict[str, Any]] = {}
        unique, resends = [], 0
        for event in self.calls("TransactionEvent"):
            key = (event["transactionInfo"]["transactionId"], event["seqNo"])
            if key in seen:
                assert seen[key] == event, f"seqNo {key} reused for a different event"
                resends += 1
                continue
            seen[key] = event
            unique.append(event)
        return unique, resends

    async def wait_for(
        self, predicate: Callable[[RawCsms], bool], *, timeout_s: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def call(self, action: str, payload: dict[str, Any], *, timeout_s: float = 10.0) -> Any:
        """Send a CALL; return the CALLRESULT payload or raise :class:`CallErrorReceived`."""
        book = SchemaBook(self.subprotocol or "ocpp2.1")
        assert not book.errors(f"{action}Request", payload), book.errors(
            f"{action}Request", payload
        )
        message_id = f"csms-{next(self._ids)}"
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        self._sent_actions[message_id] = action
        await self.send_raw(json.dumps([2, message_id, action, payload]))
        async with asyncio.timeout(timeout_s):
            frame = await future
        if frame.kind == 4:
            raise CallErrorReceived(frame.message[2], frame.message[3])
        return frame.payload

    async def send_raw(self, text: str) -> None:
        assert self._current is not None, "no station connected"
        self.frames.append(Frame("out", _try_json(text), self.connections))
        await self._current.send(text)

    async def wait_answer(self, message_id: str, *, timeout_s: float = 10.0) -> Frame:
        """The station's CALLRESULT/CALLERROR to a frame sent with :meth:`send_raw`."""
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        async with asyncio.timeout(timeout_s):
            return await future

    def cut(self) -> None:
        """Drop the current TCP connection without a closing handshake."""
        if self._current is not None and self._current.transport is not None:
            self._current.transport.abort()

    # --- server side ---------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        if self.require_client_cn:
            cn = _peer_cn(connection)
            if cn != request.path.rsplit("/", 1)[-1]:
                self.violations.append(f"client certificate CN {cn!r} is not the identity")
                return Response(403, "Forbidden", Headers(), b"")
        if self.refuse:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "refused\n")
        return basic_auth_refusal(self._passwords, request)

    async def _handle(self, connection: ServerConnection) -> None:
        self.connections += 1
        self.identities.append(
            connection.request.path.rsplit("/", 1)[-1] if connection.request else ""
        )
        if connection.subprotocol is None:
            self.violations.append("connection without a negotiated subprotocol")
        self._current = connection
        self.connected.set()
        book = SchemaBook(connection.subprotocol or "ocpp2.1")
        try:
            async for text in connection:
                await self._on_frame(connection, book, text)
        except websockets.ConnectionClosed:
            pass
        finally:
            if self._current is connection:
                self._current = None
                self.connected.clear()
            async with self._changed:
                self._changed.notify_all()

    async def _on_frame(self, connection: ServerConnection, book: SchemaBook, text: Any) -> None:
        if not isinstance(text, str):
            self.violations.append("binary frame")
            return
        message = _try_json(text)
        if not isinstance(message, list) or not message or message[0] not in (2, 3, 4):
            self.violations.append(f"not an OCPP-J frame: {text[:200]}")
            return
        frame = Frame("in", message, self.connections)
        self._check(book, frame)
        self.frames.append(frame)
        if frame.kind == 2:
            await self._answer_call(connection, book, frame)
        else:
            future = self._pending.pop(str(message[1]), None)
            if future is not None and not future.done():
                future.set_result(frame)
        async with self._changed:
            self._changed.notify_all()

    def _check(self, book: SchemaBook, frame: Frame) -> None:
        message = frame.message
        if frame.kind == 2:
            if len(message) != 4 or not isinstance(message[1], str) or len(message[1]) > 36:
                self.violations.append(f"bad CALL frame {message}")
                return
            problems = book.errors(f"{message[2]}Request", message[3])
        elif frame.kind == 3:
            action = self._sent_actions.get(str(message[1]))
            if len(message) != 3 or action is None:
                problems = [f"CALLRESULT for an unknown message {message[1]}"]
            else:
                problems = book.errors(f"{action}Response", message[2])
        else:
            ok = (
                len(message) == 5
                and all(isinstance(x, str) for x in message[1:4])
                and isinstance(message[4], dict)
            )
            problems = [] if ok else [f"bad CALLERROR frame {message}"]
        self.violations.extend(f"{frame.action or message[1]}: {p}" for p in problems)

    async def _answer_call(
        self, connection: ServerConnection, book: SchemaBook, frame: Frame
    ) -> None:
        if self.mute:
            return
        message_id, action, payload = frame.message[1], frame.message[2], frame.message[3]
        answer = self.answers.get(action)
        if answer is None:
            reply: list[Any] = [4, message_id, "NotImplemented", f"no {action} here", {}]
        else:
            result = answer(payload)
            if isinstance(result, CallErrorReply):
                reply = [4, message_id, result.code, result.description, {}]
            else:
                problems = book.errors(f"{action}Response", result)
                assert not problems, f"test double's own {action} answer is invalid: {problems}"
                reply = [3, message_id, result]
        self.frames.append(Frame("out", reply, self.connections))
        try:
            await connection.send(json.dumps(reply))
        except websockets.ConnectionClosed:
            pass


def _peer_cn(connection: ServerConnection) -> str | None:
    for rdn in (peer_certificate(connection) or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
