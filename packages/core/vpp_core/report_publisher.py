"""Publishing dispatch reports on MQTT (``vpp/v1/dispatch/{id}/report``), QoS 1.

The report is also stored and served by the API; MQTT is how the grid operator's systems hear
of it. :meth:`ReportPublisher.publish` waits for the broker's PUBACK, so the dispatch runner
knows (and logs) when a report did not get out.

With an outbox (:class:`~vpp_core.report_outbox.ReportOutbox`) a report is stored before it
is handed to paho and deleted on its PUBACK; one not acknowledged when the core stops stays
stored and is published after the next start. :meth:`ReportPublisher.stop_waiting` (SIGTERM)
ends every wait for a PUBACK at once: with the broker down, a dispatch cleared at shutdown
must not hold the core for the 30 s acknowledgement timeout (it once took ~31 s to stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Protocol, Self

from v2g_common.telemetry.link import Acked, BrokerEndpoint, MqttLink
from vpp_core.supervision import TaskSupervisor

__all__ = ["ReportPublishError", "ReportPublisher", "ReportStore"]

log = logging.getLogger(__name__)
#: Between attempts to publish the reports left from before a restart.
RESEND_EVERY_S = 30.0


class ReportPublishError(Exception):
    """The broker refused the report, or did not acknowledge it in time."""


class ReportStore(Protocol):
    """Where reports wait for their PUBACK (:class:`vpp_core.report_outbox.ReportOutbox`)."""

    async def put(self, topic: str, payload: bytes) -> None: ...

    async def remove(self, topic: str) -> None: ...

    async def pending(self) -> list[tuple[str, bytes]]: ...


class ReportPublisher:
    """``async with ReportPublisher(endpoint) as publisher: await publisher.publish(t, b)``."""

    def __init__(
        self,
        endpoint: BrokerEndpoint,
        *,
        ack_timeout_s: float = 30.0,
        supervisor: TaskSupervisor | None = None,
        outbox: ReportStore | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._ack_timeout_s = ack_timeout_s
        self._supervisor = supervisor or TaskSupervisor()
        self._outbox = outbox
        self._link: MqttLink | None = None
        self._waiting: dict[int, asyncio.Future[int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._link = MqttLink(self._endpoint, loop=asyncio.get_running_loop(), queue_size=1024)
        self._link.open()
        pump = self._supervisor.keep_running("report-publisher-acks", self._read_acks)
        self._tasks.append(asyncio.create_task(pump, name="report-publisher-acks"))
        if self._outbox is not None:
            resend = self._supervisor.contain("report-outbox", self._resend_pending())
            self._tasks.append(asyncio.create_task(resend, name="report-outbox"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_waiting()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._link is not None:
            self._link.close()

    def stop_waiting(self) -> None:
        """The core is stopping: no more waiting for PUBACKs (stored reports stay stored)."""
        self._stopping.set()
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.cancel()

    async def publish(self, topic: str, payload: bytes) -> None:
        """Store (with an outbox), publish at QoS 1, wait for the PUBACK, then forget it;
        raise :class:`ReportPublishError` (the report stays in the outbox)."""
        assert self._link is not None, "use ReportPublisher as an async context manager"
        if self._outbox is not None:
            await self._outbox.put(topic, payload)
        await self._send(topic, payload)
        if self._outbox is not None:
            await self._outbox.remove(topic)

    async def _send(self, topic: str, payload: bytes) -> None:
        assert self._link is not None
        if self._stopping.is_set():
            raise ReportPublishError(f"{topic}: not published, the core is stopping")
        mid = self._link.publish(topic, payload)
        done = self._waiting[mid] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._ack_timeout_s):
                reason = await done
        except TimeoutError:
            raise ReportPublishError(f"{topic}: no PUBACK within {self._ack_timeout_s} s") from None
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            raise ReportPublishError(f"{topic}: no PUBACK before the core stopped") from None
        finally:
            self._waiting.pop(mid, None)
        if reason >= 0x80:
            raise ReportPublishError(f"{topic}: broker refused the report (reason {reason:#x})")

    async def _resend_pending(self) -> None:
        """Publish what an earlier run left in the outbox, until each is acknowledged."""
        assert self._outbox is not None
        left = dict(await self._outbox.pending())
        while left and not self._stopping.is_set():
            for topic, payload in list(left.items()):
                try:
                    await self._send(topic, payload)
                except ReportPublishError as exc:
                    log.warning("stored report still not published: %s", exc)
                    continue
                await self._outbox.remove(topic)
                del left[topic]
                log.info("stored report published: %s", topic)
            if left:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RESEND_EVERY_S):
                        await self._stopping.wait()

    async def _read_acks(self) -> None:
        assert self._link is not None
        while True:
            event = await self._link.events.get()
            if isinstance(event, Acked):
                waiter = self._waiting.get(event.mid)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event.reason_code)
