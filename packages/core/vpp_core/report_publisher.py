"""Publishing dispatch reports on MQTT (``vpp/v1/dispatch/{id}/report``), QoS 1.

The report is also stored and served by the API; MQTT is how the grid operator's systems hear
of it. :meth:`ReportPublisher.publish` waits for the broker's PUBACK, so the dispatch runner
knows (and logs) when a report did not get out.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Self

from v2g_common.telemetry.link import Acked, BrokerEndpoint, MqttLink
from vpp_core.supervision import TaskSupervisor

__all__ = ["ReportPublishError", "ReportPublisher"]

log = logging.getLogger(__name__)


class ReportPublishError(Exception):
    """The broker refused the report, or did not acknowledge it in time."""


class ReportPublisher:
    """``async with ReportPublisher(endpoint) as publisher: await publisher.publish(t, b)``."""

    def __init__(
        self,
        endpoint: BrokerEndpoint,
        *,
        ack_timeout_s: float = 30.0,
        supervisor: TaskSupervisor | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._ack_timeout_s = ack_timeout_s
        self._supervisor = supervisor or TaskSupervisor()
        self._link: MqttLink | None = None
        self._waiting: dict[int, asyncio.Future[int]] = {}
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._link = MqttLink(self._endpoint, loop=asyncio.get_running_loop(), queue_size=1024)
        self._link.open()
        pump = self._supervisor.keep_running("report-publisher-acks", self._read_acks)
        self._pump = asyncio.create_task(pump, name="report-publisher-acks")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self._link is not None:
            self._link.close()

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the PUBACK; raise :class:`ReportPublishError`."""
        assert self._link is not None, "use ReportPublisher as an async context manager"
        mid = self._link.publish(topic, payload)
        done = self._waiting[mid] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._ack_timeout_s):
                reason = await done
        except TimeoutError:
            raise ReportPublishError(f"{topic}: no PUBACK within {self._ack_timeout_s} s") from None
        finally:
            self._waiting.pop(mid, None)
        if reason >= 0x80:
            raise ReportPublishError(f"{topic}: broker refused the report (reason {reason:#x})")

    async def _read_acks(self) -> None:
        assert self._link is not None
        while True:
            event = await self._link.events.get()
            if isinstance(event, Acked):
                waiter = self._waiting.get(event.mid)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event.reason_code)
