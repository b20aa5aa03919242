"""Containment of the core's background tasks: no failure of one ends the process.

Every long-lived task of ``vpp-core`` runs its coroutine through one :class:`TaskSupervisor`
(one per core, on the core's Prometheus registry):

=========================  ==========================================  =====================
task (label)               what                                        started by
=========================  ==========================================  =====================
``fleet-write-behind``     ``WriteBehind.run``                         ``vpp_core.app``
``registry-refresh``       re-reads the station registry               ``vpp_core.app``
``heap-policy``            ``HeapPolicy.run`` (GC freeze/collect)      ``vpp_core.app``
``csms-profile-resync``    ``StationCommander.run_resyncs``            ``CsmsServer``
``csms-connection``        one station's ``StationEndpoint.run``       ``CsmsServer``
``profile-survey``         ``ProfileSurvey.run``                       ``DispatchRunner``
``dispatch``               one dispatch (``DispatchRunner._execute``)  ``DispatchRunner``
``ingest-consume``         MQTT telemetry -> store -> ack              ``TelemetryIngest``
``report-publisher-acks``  PUBACKs of published dispatch reports       ``ReportPublisher``
``api-server``             uvicorn serving the grid-operator API       ``ApiServer``
=========================  ==========================================  =====================

Without it an exception in any of them left its ``TaskGroup``, which cancelled the core's
other tasks and exited the process (issue 13 item 1: one ``OverflowError`` in the
write-behind stopped OCPP for the whole fleet). Now a failure is

* logged at ERROR with its traceback the first time per task and exception type (then at
  DEBUG, so a task failing in a loop cannot flood the log),
* counted in ``vpp_core_task_failures_total{task}``,
* and contained: a long-lived task (:meth:`TaskSupervisor.keep_running`) is started again
  after a back-off (``restart_min_s`` doubling to ``restart_max_s``; reset once it ran that
  long); a one-shot task (:meth:`TaskSupervisor.contain`: a dispatch, a connection) ends.

Cancellation passes through untouched (stopping the core still works), as do ``SystemExit``
and ``KeyboardInterrupt``. When the core stops it calls :meth:`TaskSupervisor.hurry`: a task
waiting out its back-off is started at once (so the write-behind still makes its last write
before systemd's stop timeout), and a task that fails after that is not started again.
Components take the supervisor as an argument; without one they make their own (contained,
counted in a registry nobody scrapes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

__all__ = ["TaskSupervisor"]

log = logging.getLogger(__name__)


class TaskSupervisor:
    """Runs the core's background coroutines so that their failures are contained."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        restart_min_s: float = 1.0,
        restart_max_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry if registry is not None else CollectorRegistry()
        self.failures = Counter(
            "vpp_core_task_failures",
            "Failures of the core's background tasks (contained: logged, restarted or ended)",
            ["task"],
            registry=self._registry,
        )
        self.restart_min_s = restart_min_s
        self.restart_max_s = restart_max_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._logged: set[tuple[str, str]] = set()
        self._hurry = asyncio.Event()

    def failure_count(self, task: str) -> float:
        sample = self._registry.get_sample_value("vpp_core_task_failures_total", {"task": task})
        return sample or 0.0

    def hurry(self) -> None:
        """The core is stopping: no more back-off (see the module docstring)."""
        self._hurry.set()

    async def keep_running(self, task: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run()`` until it returns; each time it raises, note it and start it again
        after the back-off."""
        delay_s = self.restart_min_s
        while True:
            hurried = self._hurry.is_set()
            started_s = self._monotonic()
            if await self._contained(task, run()) or hurried:
                return
            if self._monotonic() - started_s >= self.restart_max_s:
                delay_s = self.restart_min_s  # it ran fine for a good while: a new episode
            log.info("%s: restarting in %.1f s", task, delay_s)
            await self._back_off(delay_s)
            delay_s = min(delay_s * 2, self.restart_max_s)

    async def _back_off(self, delay_s: float) -> None:
        """Sleep ``delay_s``, or less if the core starts stopping meanwhile."""
        if self._hurry.is_set():
            return
        sleeping = asyncio.ensure_future(self._sleep(delay_s))
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            await asyncio.wait({sleeping, hurry}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, hurry):
                waiter.cancel()
            await asyncio.gather(sleeping, hurry, return_exceptions=True)

    async def contain(self, task: str, work: Awaitable[None]) -> None:
        """Await ``work`` once; a failure is noted, not raised."""
        await self._contained(task, work)

    async def _contained(self, task: str, work: Awaitable[Any]) -> bool:
        """True when ``work`` finished, False when it failed (noted)."""
        try:
            await work
        except Exception as exc:
            self._note(task, exc)
            return False
        return True

    def _note(self, task: str, exc: Exception) -> None:
        self.failures.labels(task).inc()
        key = (task, type(exc).__name__)
        if key in self._logged:
            log.debug("background task %s failed again: %r", task, exc)
            return
        self._logged.add(key)
        log.error(
            "background task %s failed (contained, the core keeps serving; "
            "repeats logged at debug): %r",
            task,
            exc,
            exc_info=exc,
        )
