"""Drive fuzz frames into a running core next to a bystander station; check OCPP-J's rules.

Each fuzzing connection sends its frames in batches, each closed by a *sentinel* Heartbeat:
the core handles one connection's frames in order, so once the sentinel is answered every
earlier frame of the batch was handled, and the answers received are checked against the
frames' :func:`~tests.support.ocpp_fuzz.frames.expectation`: each CALL answered (CALLRESULT
or CALLERROR) under its own id, as many times as it was sent; unreadable frames answered
with a CALLERROR of an RPC-framework code (id ``"-1"`` when unreadable); no answer to an
answer or a SEND. Between batches a frame the websocket layer must refuse (invalid UTF-8 in
a text frame, a frame over the size limit) is sent now and then: the connection must close
(1007 / 1009) and the station reconnects. CALLs the core sends to a fuzzing station are
answered with (often mutated) CALLRESULTs, which exercises the core's checks of what it
receives.

The bystander is a well-behaved station on its own connection: ``TransactionEvent`` every
``interval_s`` with a meter value, each answer timed; its samples are counted in the core's
database while the fuzzing goes on and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.ocpp_fuzz.frames import MALFORMED_CODES, UNREADABLE_ID, FrameFuzzer, FuzzFrame

__all__ = ["Bystander", "FuzzStation", "FuzzTally"]

ANSWER_TIMEOUT_S = 10.0
SslFor = Callable[[str], ssl.SSLContext]


@dataclass
class FuzzTally:
    """What all fuzzing connections sent and got (shared)."""

    sent: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    csms_calls: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(self.sent.values())

    def violation(self, text: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(text if len(text) <= 500 else text[:500] + "…")


class _Link:
    """One station websocket with a reader: answers by id, CSMS CALLs to a handler."""

    def __init__(self, ws: ClientConnection, on_call: Callable[[list[Any]], Awaitable[None]]):
        self.ws = ws
        self.answers: list[list[Any]] = []
        self.arrived = asyncio.Event()
        self._on_call = on_call
        self.reader = asyncio.create_task(self._read(), name="fuzz-reader")

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                frame = json.loads(message)
                if frame[0] == 2:
                    await self._on_call(frame)
                else:
                    self.answers.append(frame)
                    self.arrived.set()

    async def answer_to(self, message_id: str) -> list[Any]:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            while True:
                for frame in self.answers:
                    if frame[1] == message_id:
                        return frame
                self.arrived.clear()
                if self.reader.done():
                    raise ConnectionError(f"closed before {message_id} was answered")
                await self.arrived.wait()

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


async def _open(url: str, identity: str, ssl_for: SslFor) -> ClientConnection:
    return await connect(
        f"{url}/{identity}",
        ssl=ssl_for(identity),
        subprotocols=["ocpp2.1"],  # type: ignore[list-item]
        max_size=None,
        ping_interval=None,
        open_timeout=10,
    )


class FuzzStation:
    def __init__(
        self, url: str, identity: str, ssl_for: SslFor, fuzzer: FrameFuzzer, tally: FuzzTally
    ) -> None:
        self.url = url
        self.identity = identity
        self.ssl_for = ssl_for
        self.fuzzer = fuzzer
        self.tally = tally
        self._sentinels = 0
        #: ids of the core's CALLs we answered: a CALLRESULTERROR may come back for each
        self._answered_calls: set[str] = set()

    async def run(self, frames: int, *, batch: int = 40, killer_every: int = 12) -> None:
        link = await self._connect()
        batches = 0
        while frames > 0:
            size = min(batch, frames)
            await self._batch(link, [self.fuzzer.frame() for _ in range(size)])
            frames -= size
            batches += 1
            if batches % killer_every == 0 and frames > 0:
                link = await self._kill_and_reconnect(link)
        await link.close()

    async def _connect(self) -> _Link:
        ws = await _open(self.url, self.identity, self.ssl_for)
        link: _Link | None = None

        async def on_call(frame: list[Any]) -> None:
            self.tally.csms_calls[frame[2]] += 1
            self._answered_calls.add(frame[1])
            assert link is not None
            with contextlib.suppress(ConnectionClosed):
                await link.ws.send(self.fuzzer.callresult_for(frame[2], frame[1]))

        link = _Link(ws, on_call)
        return link

    async def _batch(self, link: _Link, frames: list[FuzzFrame]) -> None:
        link.answers.clear()
        for frame in frames:
            await link.ws.send(frame.data, text=not frame.binary)
            self.tally.sent[frame.kind] += 1
        self._sentinels += 1
        sentinel = f"{self.identity}-sentinel-{self._sentinels}"
        await link.ws.send(json.dumps([2, sentinel, "Heartbeat", {}]))
        answer = await link.answer_to(sentinel)
        if answer[0] != 3:
            self.tally.violation(f"sentinel answered {answer}")
        got = [a for a in link.answers if a[1] != sentinel]
        self._check(frames, got)

    def _check(self, frames: list[FuzzFrame], answers: list[list[Any]]) -> None:
        expected: Counter[str] = Counter()
        errors_expected: Counter[str] = Counter()
        for frame in frames:
            if frame.expect.answer_id is not None:
                expected[frame.expect.answer_id] += 1
                errors_expected[frame.expect.answer_id] += frame.expect.must_be_error
        got: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for answer in answers:
            if answer[0] == 5 and answer[1] in self._answered_calls:
                # the core refusing one of our (fuzzed) answers to its CALLs: OCPP 2.1's way
                self.tally.answers[f"CALLRESULTERROR {answer[2]}"] += 1
                continue
            got[answer[1]] += 1
            if answer[0] == 4:
                errors[answer[1]] += 1
                self.tally.answers[f"CALLERROR {answer[2]}"] += 1
                if answer[1] == UNREADABLE_ID and answer[2] not in MALFORMED_CODES:
                    self.tally.violation(f"unreadable frame answered {answer[2]}")
            elif answer[0] == 3:
                self.tally.answers["CALLRESULT"] += 1
            else:
                self.tally.violation(f"answer of type {answer[0]}: {answer}")
        for message_id in expected.keys() | got.keys():
            if got[message_id] != expected[message_id]:
                sent = [f.data for f in frames if f.expect.answer_id == message_id][:2]
                self.tally.violation(
                    f"{message_id!r}: {got[message_id]} answers, {expected[message_id]} due; "
                    f"sent {str(sent)[:300]}"
                )
            elif errors[message_id] < errors_expected[message_id]:
                self.tally.violation(f"{message_id!r}: malformed frame not answered CALLERROR")

    async def _kill_and_reconnect(self, link: _Link) -> _Link:
        killer = self.fuzzer.killer()
        await link.ws.send(killer.data, text=True)
        self.tally.sent[killer.kind] += 1
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                await link.reader
        except TimeoutError:
            self.tally.violation(f"connection stayed open after a {killer.kind} frame")
        code = link.ws.close_code
        self.tally.closes[f"{killer.kind}: {code}"] += 1
        return await self._connect()


class Bystander:
    """A well-behaved station transacting while the fuzzing goes on."""

    def __init__(self, url: str, identity: str, ssl_for: SslFor, *, interval_s: float) -> None:
        self.url = url
        self.identity = identity
        self.ssl_for = ssl_for
        self.interval_s = interval_s
        self.transaction_id = f"{identity}-tx"
        self.round_trips_s: list[float] = []
        self.failures: list[str] = []
        self.samples_sent = 0
        self.stop = asyncio.Event()
        self._start = datetime.now(UTC).replace(microsecond=0)

    async def run(self) -> None:
        ws = await _open(self.url, self.identity, self.ssl_for)

        async def answer_csms(frame: list[Any]) -> None:  # e.g. the profile survey's read
            payload = {"status": "NoProfiles" if frame[2] == "GetChargingProfiles" else "Accepted"}
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps([3, frame[1], payload]))

        link = _Link(ws, answer_csms)
        try:
            seq = 0
            await self._transaction(link, "Started", seq)
            while not self.stop.is_set():
                seq += 1
                await self._transaction(link, "Updated", seq)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.interval_s)
            await self._transaction(link, "Ended", seq + 1)
        finally:
            await link.close()

    async def _transaction(self, link: _Link, event: str, seq: int) -> None:
        at = (self._start + timedelta(seconds=seq)).isoformat().replace("+00:00", "Z")
        payload = {
            "eventType": event,
            "timestamp": at,
            "triggerReason": "MeterValuePeriodic" if event == "Updated" else "CablePluggedIn",
            "seqNo": seq,
            "transactionInfo": {"transactionId": self.transaction_id, "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [
                {
                    "timestamp": at,
                    "sampledValue": [
                        {"value": -5000.0, "measurand": "Power.Active.Import"},
                        {"value": 100.0 + seq, "measurand": "Energy.Active.Export.Register"},
                    ],
                }
            ],
        }
        message_id = f"{self.identity}-{seq}-{event}"
        started = time.perf_counter()
        await link.ws.send(json.dumps([2, message_id, "TransactionEvent", payload]))
        try:
            answer = await link.answer_to(message_id)
        except (TimeoutError, ConnectionError) as exc:
            self.failures.append(f"{message_id}: {exc!r}")
            return
        self.round_trips_s.append(time.perf_counter() - started)
        self.samples_sent += 1
        if answer[0] != 3:
            self.failures.append(f"{message_id}: answered {answer}")
