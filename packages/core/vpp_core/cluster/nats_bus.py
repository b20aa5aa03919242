"""The bus on NATS: fleet events in a JetStream stream, requests and notices on core NATS.

Stream ``VPP_FLEET`` (file storage, subjects ``vpp.fleet.>``, duplicate window 2 min, events
kept ``[cluster] stream_max_age_s``). Each event is published with ``Nats-Msg-Id`` = its
``msg_id``, so a publish retried after a lost acknowledgement (a nats-server restart) is
stored once. A coordinator reads with a pull consumer of its own (recreated at each start
from ``since``, continued from the last sequence it saw when the server lost it); the
consumer redelivers what was not acknowledged, and the reader skips any sequence it has
already seen: nothing lost, nothing applied twice.

The client reconnects forever (``max_reconnect_attempts=-1``); while it is away publishes and
requests fail (the callers keep or count what they could not send).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    StorageType,
    StreamConfig,
)

from vpp_core.cluster.bus import BusError, BusTimeout, Handler, Listener, NoResponder, Served
from vpp_core.cluster.events import EventError, FleetEvent

__all__ = ["STREAM", "NatsBus"]

log = logging.getLogger(__name__)
STREAM = "VPP_FLEET"
_SUBJECTS = "vpp.fleet.>"
_FETCH_BATCH = 512
_RETRY_S = 0.5


@dataclass
class _Subscription:
    sub: Subscription
    nc: Client

    async def stop(self) -> None:
        """Unsubscribe; when this returns the server has forgotten the interest."""
        try:
            await self.sub.unsubscribe()
            await self.nc.flush(timeout=2)
        except (nats.errors.Error, TimeoutError):  # closed or reconnecting: gone with it
            pass


class NatsBus:
    """``async with NatsBus(url, name=node_id, stream_max_age_s=...) as bus``."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        stream_max_age_s: float = 86_400.0,
        start_timeout_s: float = 15.0,
    ) -> None:
        self.url = url
        self.start_timeout_s = start_timeout_s
        self.name = name
        self.stream_max_age_s = stream_max_age_s
        self._nc: Client | None = None
        self._down_since: float | None = None

    @property
    def down_for_s(self) -> float:
        """How long the connection has been down (0 while it is up)."""
        since = self._down_since
        return 0.0 if since is None else time.monotonic() - since

    @property
    def nc(self) -> Client:
        assert self._nc is not None, "not connected"
        return self._nc

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def __aenter__(self) -> NatsBus:
        """Connect and make sure the stream exists; a server that does not answer within
        ``start_timeout_s``: :class:`BusError` naming the setting and the URL."""
        try:
            async with asyncio.timeout(self.start_timeout_s):  # nats-py would retry forever
                await self._connect()
                await self._ensure_stream()
        except TimeoutError as exc:
            await self.__aexit__()
            raise BusError(
                f"cluster.nats_url {self.url}: no NATS server with JetStream answered"
                f" within {self.start_timeout_s:g} s"
            ) from exc
        except (OSError, nats.errors.Error) as exc:
            await self.__aexit__()
            raise BusError(f"cluster.nats_url {self.url}: cannot connect: {exc!r}") from exc
        return self

    async def _connect(self) -> None:
        self._nc = await nats.connect(
            self.url,
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            allow_reconnect=True,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )

    async def __aexit__(self, *exc: object) -> None:
        if self._nc is not None:
            await self._nc.close()

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats: %s", exc)

    async def _on_disconnected(self) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
        log.warning("nats: disconnected from %s, reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        self._down_since = None
        log.info("nats: reconnected")

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=STREAM,
            subjects=[_SUBJECTS],
            storage=StorageType.FILE,
            max_age=self.stream_max_age_s,
            duplicate_window=120.0,
        )
        js = self.nc.jetstream()
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:  # exists with other limits: keep it
            await js.update_stream(config)

    # -- fleet events -----------------------------------------------------------------------

    async def publish_event(self, event: FleetEvent) -> None:
        try:
            await self.nc.jetstream().publish(
                f"vpp.fleet.{event.op}",
                event.encode(),
                headers={"Nats-Msg-Id": event.msg_id},
                timeout=2.0,
            )
        except (nats.errors.Error, TimeoutError) as exc:
            raise BusError(f"event {event.msg_id} not stored: {exc!r}") from exc

    async def events(self, *, since: datetime) -> AsyncIterator[tuple[int, FleetEvent]]:
        durable = f"coordinator-{self.name}"
        last_seq = 0
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=since,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_ack_pending=-1,
            inactive_threshold=600.0,
        )
        js = self.nc.jetstream()
        await self._delete_consumer(durable)  # a new start replays from ``since``
        sub = await js.pull_subscribe(_SUBJECTS, durable=durable, stream=STREAM, config=config)
        while True:
            try:
                batch = await sub.fetch(_FETCH_BATCH, timeout=1.0)
            except TimeoutError:
                continue
            except nats.js.errors.NotFoundError:  # the server lost the consumer: from last_seq
                sub = await self._recreate(durable, last_seq)
                continue
            except nats.errors.Error as exc:
                log.debug("fleet events: %r; retrying", exc)
                await asyncio.sleep(_RETRY_S)
                continue
            for msg in batch:
                seq = msg.metadata.sequence.stream
                if seq > last_seq:
                    last_seq = seq
                    event = _decoded(msg)
                    if event is not None:
                        yield seq, event
                await _ack(msg)

    async def _recreate(self, durable: str, last_seq: int) -> JetStreamPull:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=last_seq + 1,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_ack_pending=-1,
            inactive_threshold=600.0,
        )
        await self._delete_consumer(durable)
        js = self.nc.jetstream()
        return await js.pull_subscribe(_SUBJECTS, durable=durable, stream=STREAM, config=config)

    async def _delete_consumer(self, durable: str) -> None:
        try:
            await self.nc.jetstream().delete_consumer(STREAM, durable)
        except nats.js.errors.NotFoundError:
            pass

    # -- requests and notices ---------------------------------------------------------------

    async def request(self, subject: str, payload: bytes, *, timeout_s: float) -> bytes:
        try:
            reply = await self.nc.request(subject, payload, timeout=timeout_s)
        except nats.errors.NoRespondersError as exc:
            raise NoResponder(subject) from exc
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            raise BusTimeout(f"{subject}: no answer within {timeout_s:g} s") from exc
        except nats.errors.Error as exc:
            raise BusError(f"{subject}: {exc!r}") from exc
        return reply.data

    async def serve(self, subject: str, handler: Handler) -> Served:
        async def answer(msg: Msg) -> None:
            reply = await handler(msg.data)
            try:
                await msg.respond(reply)
            except nats.errors.Error as exc:
                log.debug("%s: reply lost: %r", subject, exc)

        sub = await self.nc.subscribe(subject, cb=answer)
        try:  # the server has it when this returns: a request right after finds it
            await self.nc.flush(timeout=2)
        except (nats.errors.Error, TimeoutError) as exc:
            log.debug("%s: subscription not confirmed: %r", subject, exc)
        return _Subscription(sub, self.nc)

    async def notify(self, subject: str, payload: bytes) -> None:
        try:
            await self.nc.publish(subject, payload)
        except nats.errors.Error as exc:
            raise BusError(f"{subject}: {exc!r}") from exc

    async def listen(self, pattern: str, listener: Listener) -> Served:
        async def heard(msg: Msg) -> None:
            listener(msg.subject, msg.data)

        return _Subscription(await self.nc.subscribe(pattern, cb=heard), self.nc)


JetStreamPull = nats.js.JetStreamContext.PullSubscription


def _decoded(msg: Msg) -> FleetEvent | None:
    msg_id = (msg.headers or {}).get("Nats-Msg-Id", "?")
    try:
        return FleetEvent.decode(msg.data, msg_id)
    except EventError as exc:
        log.error("%s", exc)
        return None


async def _ack(msg: Msg) -> None:
    try:
        await msg.ack()
    except nats.errors.Error:  # redelivered later, skipped by its sequence
        pass
