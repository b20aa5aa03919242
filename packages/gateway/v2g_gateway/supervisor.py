"""The asyncio supervisor: runs the services that feed the control process (local lease
source now; the OCPP station and the MQTT uplink later), tells systemd how things stand and
feeds its watchdog only while the control loop reports on time.

Services are components: anything with a ``name``, ``async run(channel)`` and
``reload(config)``; the daemon's wiring lists them, one line each. A service may also carry a
``restart_requested`` event (the OCPP station sets it on a Reset from its CSMS): the
supervisor then stops like on SIGTERM (ramp to 0 W, contactor open) and exits with
:data:`RESTART_STATUS`, which systemd's ``Restart=on-failure`` answers with a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from v2g_common.config import ConfigError
from v2g_common.sdnotify import SystemdNotifier
from v2g_gateway.config import GatewayConfig
from v2g_gateway.control.channel import ControlChannel, ControlEvent, ControlSnapshot
from v2g_gateway.control.events import EVENT_HELP, MODULE_FAULT_CODES, EventCode
from v2g_gateway.control_host import ControlProcess

__all__ = ["RESTART_STATUS", "StartupError", "SupervisedService", "Supervisor"]

log = logging.getLogger("v2g_gateway.supervisor")

_ERROR_CODES = MODULE_FAULT_CODES | {
    EventCode.GRID_FREQ_OUT_OF_RANGE,
    EventCode.SENSOR_MISMATCH,
    EventCode.SENSOR_FAULT,
    EventCode.MODULE_COMM_LOST,
    EventCode.CONTROL_LOOP_STALLED,
    EventCode.CONTROL_PROCESS_EXITED,
    EventCode.COMMS_LOSS_OPEN_UNDER_LOAD,
}
_WARNING_CODES = {
    EventCode.COMMS_LOSS_RAMP,
    EventCode.COMMS_LOSS_FAILSAFE,
    EventCode.LEASE_EXPIRED,
}
_COMMS_LOSS_CODES = {
    EventCode.COMMS_LOSS_RAMP,
    EventCode.COMMS_LOSS_FAILSAFE,
    EventCode.COMMS_LOSS_OPEN_UNDER_LOAD,
}
_HEALTH_CHECK_S = 0.25
#: Exit status after a clean stop that a service asked for as a restart (OCPP Reset).
RESTART_STATUS = 4


class SupervisedService(Protocol):
    """A long-lived component of the supervisor (station, uplink, local lease source)."""

    name: str

    async def run(self, channel: ControlChannel) -> None: ...

    def reload(self, config: GatewayConfig) -> None: ...


class StartupError(Exception):
    """The control loop never reported (hardware absent, process died)."""


class Supervisor:
    def __init__(
        self,
        *,
        config: GatewayConfig,
        channel: ControlChannel,
        control: ControlProcess,
        services: Sequence[SupervisedService],
        notifier: SystemdNotifier,
        load_config: Callable[[], GatewayConfig],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = config
        self._channel = channel
        self._control = control
        self._services = list(services)
        self._notifier = notifier
        self._load_config = load_config
        self._clock = clock
        self._stop = asyncio.Event()
        self._events = channel.subscribe_events()
        self._healthy = False
        self._stopping = False  # a stop sequence ends the loop's reports: not a stall

    async def run(self) -> int:
        """Until SIGTERM (0 after a clean ramp-down) or the control process dies (1)."""
        with self._signal_handlers():
            await self._await_first_snapshot()
            snap = self._channel.snapshot()
            self._healthy = True
            self._notifier.ready(_status_line(snap))
            log.info("control loop running; %d service(s)", len(self._services))
            async with asyncio.TaskGroup() as group:
                services = [
                    group.create_task(s.run(self._channel), name=f"service:{s.name}")
                    for s in self._services
                ]
                watchdog = group.create_task(self._watchdog(), name="watchdog")
                events = group.create_task(self._log_events(), name="event-log")
                stop_requested = await self._wait_stop_or_exit()
                for task in services:  # no new leases from here on
                    task.cancel()
                status = await self.stop_control() if stop_requested else await self._exited()
                if stop_requested and status == 0 and self._restart_wanted():
                    log.warning("restarting at the CSMS's request (exit status %d)", RESTART_STATUS)
                    status = RESTART_STATUS
                watchdog.cancel()
                events.cancel()
            return status

    # --- life cycle ----------------------------------------------------------------------
    async def _await_first_snapshot(self) -> None:
        timeout_s = self._cfg.daemon.startup_timeout_s + 5.0
        try:
            await self._channel.wait_snapshot(
                lambda s: s.cycles > 0 or self._channel.closed, timeout_s=timeout_s
            )
        except TimeoutError:
            raise StartupError(
                f"no report from the control loop within {timeout_s:.0f} s"
            ) from None
        if self._channel.closed:
            code = await self._control.wait()
            raise StartupError(f"control process exited during start-up (status {code})")

    async def _wait_stop_or_exit(self) -> bool:
        """True on a stop (or restart) request, False when the control process went away."""
        waits = [self._stop.wait(), *(e.wait() for e in self._restart_events())]
        stops = [asyncio.ensure_future(w) for w in waits]
        closed = asyncio.ensure_future(self._channel.wait_closed())
        try:
            await asyncio.wait({*stops, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (*stops, closed):
                waiting.cancel()
        return self._stop.is_set() or self._restart_wanted()

    def _restart_events(self) -> list[asyncio.Event]:
        events = (getattr(s, "restart_requested", None) for s in self._services)
        return [e for e in events if isinstance(e, asyncio.Event)]

    def _restart_wanted(self) -> bool:
        return any(e.is_set() for e in self._restart_events())

    async def _exited(self) -> int:
        code = await self._control.wait()
        log.error(
            "control process exited (status %s)",
            code,
            extra={"event_code": EventCode.CONTROL_PROCESS_EXITED},
        )
        return 1

    async def stop_control(self) -> int:
        """Ramp to 0 W, open the contactor, let the control process exit."""
        self._stopping = True
        self._notifier.stopping("ramping to 0 W and opening the contactor")
        log.info("stopping: ramping to 0 W, then opening the contactor")
        self._channel.request_stop()
        code = await self._control.stop(timeout_s=self._cfg.daemon.stop_timeout_s)
        if code == 0:
            log.info("stopped cleanly")
            return 0
        log.error("control process ended with status %s while stopping", code)
        return 1

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGTERM: self._stop.set,
            signal.SIGINT: self._stop.set,
            signal.SIGHUP: self._reload,
            signal.SIGUSR2: self._stall_hook,
        }
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        try:
            yield
        finally:
            for sig in handlers:
                loop.remove_signal_handler(sig)

    def _reload(self) -> None:
        try:
            fresh = self._load_config()
        except ConfigError as exc:
            log.error("SIGHUP: configuration not reloaded, keeping the old one:\n%s", exc)
            return
        if fresh.control.period_s != self._cfg.control.period_s:
            log.warning("SIGHUP: control.period_s only changes on restart")
        self._cfg = fresh
        self._channel.reload_settings(fresh.control)
        for service in self._services:
            service.reload(fresh)
        log.info("SIGHUP: limits and services reloaded")

    def _stall_hook(self) -> None:
        if not self._cfg.daemon.test_hooks:
            log.warning("SIGUSR2 ignored: daemon.test_hooks is off")
            return
        log.warning(
            "test hook: stalling the control loop for %.1f s", self._cfg.daemon.test_stall_s
        )
        self._channel.request_stall(self._cfg.daemon.test_stall_s)

    # --- health --------------------------------------------------------------------------
    def loop_healthy(self) -> bool:
        """The loop reported within ``loop_stall_timeout_s`` and its process is alive."""
        age = self._clock() - self._channel.received_s
        return not self._channel.closed and age < self._cfg.daemon.loop_stall_timeout_s

    async def _watchdog(self) -> None:
        interval = min(self._notifier.watchdog_interval_s or _HEALTH_CHECK_S, _HEALTH_CHECK_S)
        next_status = self._clock()
        while True:
            healthy = self.loop_healthy()
            if healthy:
                self._notifier.watchdog()
            self._note_health(healthy)
            if self._clock() >= next_status:
                next_status = self._clock() + self._cfg.daemon.status_every_s
                self._notifier.status(_status_line(self._channel.snapshot()))
            await asyncio.sleep(interval)

    def _note_health(self, healthy: bool) -> None:
        if healthy == self._healthy or self._stopping:
            return
        self._healthy = healthy
        if healthy:
            log.info("control loop reporting again")
        else:
            log.error(
                "control loop stalled: watchdog no longer fed",
                extra={"event_code": EventCode.CONTROL_LOOP_STALLED},
            )
            self._notifier.status("control loop stalled")

    async def _log_events(self) -> None:
        while True:
            event: ControlEvent = await self._events.get()
            level = logging.INFO
            if event.code in _ERROR_CODES:
                level = logging.ERROR
            elif event.code in _WARNING_CODES:
                level = logging.WARNING
            log.log(
                level,
                "%s: %s%s",
                event.code,
                EVENT_HELP[event.code].cause,
                self._contact_age(event),
                extra={"event_code": event.code},
            )

    def _contact_age(self, event: ControlEvent) -> str:
        """For the comms-loss events: how long after the last contact they happened."""
        if event.code not in _COMMS_LOSS_CODES:
            return ""
        last = self._channel.last_contact_s
        if last is None:
            return " (no CSMS contact since the daemon started)"
        return f" ({event.monotonic_s - last:.2f} s after the last CSMS contact)"


def _status_line(s: ControlSnapshot) -> str:
    state = "tripped " + s.trip_code if s.trip_code else ("fail-safe" if s.fail_safe else "ok")
    contactor = "closed" if s.contactor_closed else "open"
    return (
        f"{state}; commanded {s.commanded_w:.0f} W, measured {s.power_w:.0f} W; "
        f"contactor {contactor}; loop p99 {s.lateness_p99_us:.0f} us"
    )
