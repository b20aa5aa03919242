"""The core's telemetry ingest: subscribe with the core's certificate, validate, de-duplicate,
store, and only then acknowledge (paho manual ack).

Every message is acknowledged after the transaction holding it commits, so a crash or a
database outage makes the broker deliver it again (the store drops the repeat). While the
store is down the batch is retried and nothing more is acknowledged; the broker stops at our
Receive Maximum and queues the rest in our persistent session.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from types import TracebackType

from v2g_common.telemetry import (
    SITE_TELEMETRY_FILTER,
    PayloadError,
    SiteEvent,
    SiteSummary,
    TelemetryMessage,
    TopicError,
    decode_message,
    parse_site_topic,
)
from v2g_common.telemetry.link import (
    BrokerEndpoint,
    LinkDown,
    LinkEvent,
    LinkUp,
    MqttLink,
    Received,
    Subscribed,
)
from vpp_core.ingest.board import SiteBoard
from vpp_core.ingest.config import IngestConfig
from vpp_core.ingest.errors import TelemetryStoreError
from vpp_core.ingest.metrics import IngestMetrics, RegionCollector
from vpp_core.ingest.ports import SiteRecord, TelemetryStore
from vpp_core.supervision import TaskSupervisor

__all__ = ["TelemetryIngest"]

log = logging.getLogger(__name__)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TelemetryIngest:
    """``async with TelemetryIngest(config, store) as ingest:`` subscribes until the block ends.

    ``board`` holds the latest state per site (loaded from the store on entry);
    ``region_collector()`` gives the Prometheus collector of the per-region gauges.
    """

    def __init__(
        self,
        config: IngestConfig,
        store: TelemetryStore,
        *,
        metrics: IngestMetrics | None = None,
        supervisor: TaskSupervisor | None = None,
        wall_clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics or IngestMetrics()
        self.supervisor = supervisor or TaskSupervisor()
        self.board = SiteBoard()
        self._wall_clock = wall_clock
        self._link: MqttLink | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._running: list[asyncio.Task[None]] = []
        self._warned: set[tuple[str, str]] = set()
        self._cursors: dict[str, tuple[str, int]] = {}
        self._listeners: list[Callable[[SiteEvent], None]] = []
        #: Set once the broker granted the subscription (on the first connection).
        self.subscribed = asyncio.Event()

    def on_event(self, listener: Callable[[SiteEvent], None]) -> None:
        """Call ``listener`` with each new event once it is stored (a redelivery is not new).
        A listener that raises is logged (once per listener and exception type) and the
        ingest carries on: the event is stored and acknowledged all the same."""
        self._listeners.append(listener)

    def _tell(self, event: SiteEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception as exc:
                self.metrics.listener_errors.inc()
                key = (repr(listener), type(exc).__name__)
                if key not in self._warned:
                    self._warned.add(key)
                    log.exception("ingest: event listener failed on %s", event.code)

    def region_collector(self) -> RegionCollector:
        return RegionCollector(
            self.board, stale_after_s=self.config.stale_after_s, clock=self._wall_clock
        )

    async def __aenter__(self) -> TelemetryIngest:
        self.board.load(await self.store.site_records())
        cfg = self.config
        self._link = MqttLink(
            self.link_endpoint(),
            loop=asyncio.get_running_loop(),
            # a reconnect redelivers the whole unacknowledged window while the old copies may
            # still be queued here: room for two windows
            queue_size=2 * cfg.receive_maximum + 64,
            manual_ack=True,
        )
        self._link.open()
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        consume = self.supervisor.keep_running("ingest-consume", self._consume)
        self._running = [self._tasks.create_task(consume, name="ingest-consume")]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tasks is not None:
                for task in self._running:
                    task.cancel()
                await self._tasks.__aexit__(exc_type, exc, tb)
        finally:
            if self._link is not None:
                self._link.close()
            self.metrics.connected.set(0)

    def link_endpoint(self) -> BrokerEndpoint:
        """Broker address, certificate and session settings of the ingest's connection."""
        cfg = self.config
        return BrokerEndpoint(
            host=cfg.broker_host,
            port=cfg.broker_port,
            client_id=cfg.client_id,
            ca_file=cfg.ca_file,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            keepalive_s=cfg.keepalive_s,
            session_expiry_s=cfg.session_expiry_s,
            receive_maximum=cfg.receive_maximum,
            reconnect_min_s=cfg.reconnect_min_s,
            reconnect_max_s=cfg.reconnect_max_s,
        )

    async def _consume(self) -> None:
        assert self._link is not None
        events = self._link.events
        linger_s = self.config.batch_linger_s
        while True:
            batch = [await events.get()]
            if linger_s > 0 and isinstance(batch[0], Received):
                # one transaction per few ms of traffic instead of one per message
                await asyncio.sleep(linger_s)
            while len(batch) < self.config.batch_max and not events.empty():
                batch.append(events.get_nowait())
            await self._handle(batch)

    async def _handle(self, batch: Sequence[LinkEvent]) -> None:
        assert self._link is not None
        received: list[Received] = []
        for event in batch:
            if isinstance(event, LinkUp):
                self._link.subscribe(SITE_TELEMETRY_FILTER)
                self.metrics.connected.set(1)
                log.info("ingest connected (session present: %s)", event.session_present)
            elif isinstance(event, LinkDown):
                self.metrics.connected.set(0)
                log.warning("ingest disconnected: %s", event.reason)
            elif isinstance(event, Subscribed):
                self._on_subscribed(event)
            elif isinstance(event, Received):
                received.append(event)
        if received:
            messages = [m for m in (self._decode(r) for r in received) if m is not None]
            await self._store(messages)
            for r in received:
                if r.qos:
                    self._link.ack(r.mid)

    def _on_subscribed(self, event: Subscribed) -> None:
        if event.granted:
            self.subscribed.set()
        else:
            log.error("broker refused the ingest subscription (%s): check the ACL", event.reason)

    def _decode(self, received: Received) -> TelemetryMessage | None:
        try:
            return decode_message(parse_site_topic(received.topic), received.payload)
        except (TopicError, PayloadError) as exc:
            reason = exc.reason if isinstance(exc, PayloadError) else "topic"
            self.metrics.invalid.labels(reason).inc()
            self.metrics.messages.labels(_kind_of_topic(received.topic), "invalid").inc()
            if (received.topic, reason) not in self._warned:
                self._warned.add((received.topic, reason))
                log.warning("ingest refused a message on %s: %s", received.topic, exc)
            return None

    async def _store(self, messages: Sequence[TelemetryMessage]) -> None:
        if not messages:
            return
        received_at = self._wall_clock()
        outcomes = await self._record_with_retry(messages, received_at)
        for message, new in zip(messages, outcomes, strict=True):
            kind = "summary" if isinstance(message, SiteSummary) else "event"
            self.metrics.messages.labels(kind, "accepted" if new else "duplicate").inc()
            if new:
                self._count_gap(message)
            if new and isinstance(message, SiteSummary):
                self.board.put(_record_of(message, received_at))
                self.metrics.delay.observe((received_at - message.at).total_seconds())
            elif new and isinstance(message, SiteEvent):
                self._tell(message)

    async def _record_with_retry(
        self, messages: Sequence[TelemetryMessage], received_at: dt.datetime
    ) -> list[bool]:
        delay_s = 0.5
        while True:
            try:
                return await self.store.record_batch(messages, received_at=received_at)
            except TelemetryStoreError as exc:
                self.metrics.store_errors.inc()
                log.error("ingest store failed (retrying in %.1f s): %s", delay_s, exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.config.store_retry_max_s)

    def _count_gap(self, message: TelemetryMessage) -> None:
        """Count seqs skipped within a stream: summaries a site's outbox dropped (it says so in
        an OUTBOX_DROPPED event) or messages the broker discarded (queue limits)."""
        previous = self._cursors.get(message.site)
        if previous is not None and previous[0] == message.stream:
            missing = message.seq - previous[1] - 1
            if missing > 0:
                self.metrics.seq_gaps.inc(missing)
        self._cursors[message.site] = (message.stream, message.seq)


def _kind_of_topic(topic: str) -> str:
    last = topic.rsplit("/", 1)[-1]
    return last if last in ("summary", "event") else "unknown"


def _record_of(summary: SiteSummary, received_at: dt.datetime) -> SiteRecord:
    fields = summary.model_dump(exclude={"schema_id", "interval_s"})
    return SiteRecord(received_at=received_at, **fields)
