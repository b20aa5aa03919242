"""The site uplink: summaries every interval and events as they happen, through the outbox,
to the broker over MQTT v5/TLS with the site's certificate (QoS 1, persistent session).

Delivery contract: a message leaves the outbox only when the broker's PUBACK for it arrives
(``Acked`` by mid). Order per site is the outbox order (``seq``): at most ``max_inflight``
messages are with paho; after a reconnect paho re-sends those first, and nothing newer is
handed over until all of them are acknowledged, so the broker sees ``seq`` in order. After
a restart everything still in the outbox is sent again; the core drops what it already has.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

from v2g_common.telemetry import (
    EventSeverity,
    SiteEvent,
    encode_message,
    event_topic,
    summary_topic,
)
from v2g_common.telemetry.link import Acked, BrokerEndpoint, LinkDown, LinkUp, MqttLink
from v2g_gateway.uplink.config import UplinkConfig
from v2g_gateway.uplink.errors import OutboxError
from v2g_gateway.uplink.outbox import DroppedSummaries, Outbox
from v2g_gateway.uplink.ports import ChargerState, ChargerStateSource
from v2g_gateway.uplink.requests import RequestHandler, SiteRequests
from v2g_gateway.uplink.summary import SummaryHeader, summarize

__all__ = ["OUTBOX_DROPPED", "SiteUplink", "UplinkStatus"]

log = logging.getLogger(__name__)

#: Event code of the report of summaries the bounded outbox dropped unsent.
OUTBOX_DROPPED = "OUTBOX_DROPPED"
#: PUBACK reason codes >= 0x80 are refusals (0x87 not authorized: the ACL); retrying the same
#: message cannot succeed, so it is removed and counted, not retried forever.
_FIRST_FAILURE_CODE = 0x80
#: PUBACK 0x10: accepted, but nobody subscribes (the core's persistent session is missing).
_NO_MATCHING_SUBSCRIBERS = 0x10
DetailValue = str | int | float | bool | None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class UplinkStatus:
    connected: bool
    in_flight: int
    outbox_messages: int
    acknowledged: int
    rejected: int
    dropped_summaries: int
    unrouted: int


@dataclass(frozen=True, slots=True)
class _DropReport:
    seq: int
    count: int
    first_seq: int
    last_seq: int


class SiteUplink:
    """``async with SiteUplink(config, sources) as uplink:`` runs it; leaving the block closes
    the MQTT connection and the outbox (what was not acknowledged stays on disk).

    ``sources`` maps charger id -> :class:`ChargerStateSource` (one for a gateway, several in
    collector mode). :meth:`record_event` must be called from the uplink's event loop.
    """

    def __init__(
        self,
        config: UplinkConfig,
        sources: Mapping[str, ChargerStateSource],
        *,
        wall_clock: Callable[[], dt.datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        requests: RequestHandler | None = None,
    ) -> None:
        """``requests``: answers the core's requests to this site (activation files)."""
        if not sources:
            raise ValueError("the uplink needs at least one charger state source")
        self.config = config
        self._sources = dict(sources)
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._outbox: Outbox | None = None
        self._link: MqttLink | None = None
        self._request_handler = requests
        self.requests: SiteRequests | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._running: list[asyncio.Task[None]] = []
        self._in_flight: dict[int, int] = {}  # mid -> seq
        self._handed_seq = 0
        self._connected = False
        self._draining = False
        self._drop_report: _DropReport | None = None
        self._failing_chargers: set[str] = set()
        self._empty = asyncio.Event()
        self._acknowledged = 0
        self._rejected = 0
        self._dropped = 0
        self._outbox_failures = 0
        self._unrouted = 0
        self._down_logged = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> SiteUplink:
        cfg = self.config
        self._outbox = Outbox.open(
            cfg.outbox_path,
            site=cfg.site,
            max_messages=cfg.outbox_max_messages,
            durable=cfg.outbox_fsync,
        )
        self._link = MqttLink(
            self._endpoint(),
            loop=asyncio.get_running_loop(),
            queue_size=4 * cfg.max_inflight + 64,
        )
        if self._request_handler is not None:
            self.requests = SiteRequests(
                self._link, region=cfg.region, site=cfg.site, handler=self._request_handler
            )
        self._link.open()
        self._note_size()
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._running = [
            self._tasks.create_task(self._consume_link(), name=f"uplink-{cfg.site}-link"),
            self._tasks.create_task(self._summary_loop(), name=f"uplink-{cfg.site}-summaries"),
        ]
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
            if self._outbox is not None:
                self._outbox.close()

    def _endpoint(self) -> BrokerEndpoint:
        cfg = self.config
        return BrokerEndpoint(
            host=cfg.broker_host,
            port=cfg.broker_port,
            client_id=cfg.client_id or cfg.site,
            ca_file=cfg.ca_file,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            keepalive_s=cfg.keepalive_s,
            session_expiry_s=cfg.session_expiry_s,
            max_inflight=cfg.max_inflight,
            reconnect_min_s=cfg.reconnect_min_s,
            reconnect_max_s=cfg.reconnect_max_s,
        )

    @property
    def status(self) -> UplinkStatus:
        return UplinkStatus(
            connected=self._connected,
            in_flight=len(self._in_flight),
            outbox_messages=len(self._outbox) if self._outbox is not None else 0,
            acknowledged=self._acknowledged,
            rejected=self._rejected,
            dropped_summaries=self._dropped,
            unrouted=self._unrouted,
        )

    async def flushed(self) -> None:
        """Return once the outbox is empty (everything acknowledged); for a graceful stop,
        under the caller's timeout."""
        await self._empty.wait()

    def _note_size(self) -> None:
        if self._outbox is not None and len(self._outbox) == 0:
            self._empty.set()
        else:
            self._empty.clear()

    @property
    def stream(self) -> str:
        return self._require_outbox().stream

    def _require_outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("the uplink is not open (use `async with`)")
        return self._outbox

    # --- producing ---------------------------------------------------------------------------

    def record_event(
        self,
        code: str,
        *,
        severity: EventSeverity,
        charger: str | None = None,
        detail: Mapping[str, DetailValue] | None = None,
    ) -> int:
        """Queue one event for the core (never dropped by the outbox); returns its ``seq``."""
        cfg = self.config

        def render(seq: int) -> tuple[str, bytes]:
            event = SiteEvent(
                site=cfg.site,
                region=cfg.region,
                stream=self.stream,
                seq=seq,
                at=self._wall_clock(),
                code=code,
                severity=severity,
                charger=charger,
                detail=dict(detail or {}),
            )
            return event_topic(cfg.region, cfg.site), encode_message(event)

        return self._append("event", render)

    async def summarize_now(self) -> int:
        """Read every charger and queue one summary; returns its ``seq``."""
        cfg = self.config
        states = await self._read_states()
        header = SummaryHeader(
            site=cfg.site,
            region=cfg.region,
            stream=self.stream,
            interval_s=cfg.summary_interval_s,
            chargers=len(self._sources),
        )

        def render(seq: int) -> tuple[str, bytes]:
            summary = summarize(header, states, seq=seq, at=self._wall_clock())
            return summary_topic(cfg.region, cfg.site), encode_message(summary)

        return self._append("summary", render)

    def _append(self, kind: str, render: Callable[[int], tuple[str, bytes]]) -> int:
        outbox = self._require_outbox()
        seq, dropped = outbox.append(
            "summary" if kind == "summary" else "event", render, keep=self._in_flight.values()
        )
        if dropped is not None:
            self._note_drop(dropped)
        self._note_size()
        self._fill_window()
        return seq

    def _note_drop(self, dropped: DroppedSummaries) -> None:
        """Report dropped summaries in one event, merged into the previous report while
        that one is still unsent (a long outage yields one growing report, not thousands)."""
        self._dropped += dropped.count
        log.warning("uplink outbox full: dropped %d oldest summaries", dropped.count)
        prev = self._drop_report
        if prev is not None and prev.seq > self._handed_seq:
            merged = _DropReport(
                prev.seq,
                prev.count + dropped.count,
                min(prev.first_seq, dropped.seqs[0]),
                max(prev.last_seq, dropped.seqs[-1]),
            )
            if self._require_outbox().rewrite(merged.seq, self._drop_payload(merged)):
                self._drop_report = merged
                return
        report = _DropReport(0, dropped.count, dropped.seqs[0], dropped.seqs[-1])

        def render(seq: int) -> tuple[str, bytes]:
            self._drop_report = _DropReport(seq, report.count, report.first_seq, report.last_seq)
            return event_topic(self.config.region, self.config.site), self._drop_payload(
                self._drop_report
            )

        self._require_outbox().append("event", render, keep=self._in_flight.values())

    def _drop_payload(self, report: _DropReport) -> bytes:
        event = SiteEvent(
            site=self.config.site,
            region=self.config.region,
            stream=self.stream,
            seq=report.seq,
            at=self._wall_clock(),
            code=OUTBOX_DROPPED,
            severity="warning",
            detail={
                "dropped_summaries": report.count,
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
            },
        )
        return encode_message(event)

    async def _summary_loop(self) -> None:
        interval = self.config.summary_interval_s
        next_at = self._monotonic()
        while True:
            try:
                await self.summarize_now()
            except OutboxError as exc:  # disk full / failing: lose this summary, not the uplink
                self._outbox_failures += 1
                log.error("uplink: summary not stored (%d so far): %s", self._outbox_failures, exc)
            next_at += interval
            now = self._monotonic()
            if next_at < now:  # slow chargers: skip the missed ticks instead of bursting
                next_at = now
            await asyncio.sleep(next_at - now)

    async def _read_states(self) -> list[ChargerState]:
        results = await asyncio.gather(
            *(self._read_one(cid, src) for cid, src in self._sources.items())
        )
        return [state for state in results if state is not None]

    async def _read_one(self, charger_id: str, source: ChargerStateSource) -> ChargerState | None:
        try:
            async with asyncio.timeout(self.config.charger_read_timeout_s):
                state = await source.read_charger_state()
        except Exception as exc:  # any failure: this charger is "not reporting"
            if charger_id not in self._failing_chargers:
                self._failing_chargers.add(charger_id)
                log.warning("uplink: charger %s not reporting: %r", charger_id, exc)
            return None
        if charger_id in self._failing_chargers:
            self._failing_chargers.discard(charger_id)
            log.info("uplink: charger %s reporting again", charger_id)
        return state

    # --- delivering --------------------------------------------------------------------------

    async def _consume_link(self) -> None:
        assert self._link is not None
        while True:
            event = await self._link.events.get()
            if isinstance(event, LinkUp):
                self._connected = True
                self._down_logged = False
                # paho re-sends what is in flight first; newer messages wait for those acks
                self._draining = bool(self._in_flight)
                log.info(
                    "uplink %s connected (session present: %s)",
                    self.config.site,
                    event.session_present,
                )
            elif isinstance(event, LinkDown):
                if self._connected or not self._down_logged:  # once per outage, not per retry
                    log.warning("uplink %s not connected: %s", self.config.site, event.reason)
                    self._down_logged = True
                self._connected = False
            elif isinstance(event, Acked):
                self._on_ack(event)
            if self.requests is not None:
                self.requests.on_event(event)
            self._fill_window()

    def _on_ack(self, ack: Acked) -> None:
        seq = self._in_flight.pop(ack.mid, None)
        if not self._in_flight:
            self._draining = False
        if seq is None:
            return
        if ack.reason_code >= _FIRST_FAILURE_CODE:
            self._rejected += 1
            log.error(
                "broker refused uplink message seq %d (reason code 0x%02x); removed from outbox",
                seq,
                ack.reason_code,
            )
        else:
            self._acknowledged += 1
            if ack.reason_code == _NO_MATCHING_SUBSCRIBERS:
                self._unrouted += 1
                if self._unrouted in (1, 100, 10_000):
                    log.warning(
                        "broker has no subscriber for site telemetry (%d messages so far): "
                        "is the core's ingest session missing on the broker?",
                        self._unrouted,
                    )
        self._require_outbox().remove(seq)
        self._note_size()

    def _fill_window(self) -> None:
        if not self._connected or self._draining or self._link is None:
            return
        room = self.config.max_inflight - len(self._in_flight)
        if room <= 0:
            return
        for entry in self._require_outbox().pending(after_seq=self._handed_seq, limit=room):
            mid = self._link.publish(entry.topic, entry.payload)
            self._in_flight[mid] = entry.seq
            self._handed_seq = entry.seq
