"""Frequency services, held: plan, send each session its LocalFrequency profile, clear it at
the window's end (or when the operator ends the service early).

Profiles go out through the dispatch's station commands and fan-out (bounded concurrency, one
bad station never stops the others), at the dispatch's ``stack_level`` under a profile id of
their own (``profile_id_base + SERVICE_PROFILE_OFFSET + evseId``), so clearing a service
clears exactly its profiles (by id), never a dispatch's. A session holds one service at a
time (a second one's profile, same id, would replace the first) and none while a dispatch
holds it. A dispatch in turn treats a service's profile as any other at its stackLevel once
it has read the station's profiles (``vpp_core.dispatch.conflicts``: another id at the same
level excludes the session). Each service's
life is one task of this component's TaskGroup, run under the core's TaskSupervisor: a
failure is contained, logged once and counted, and the service is marked ``failed``.
Services are journaled and taken back after a restart (``services.durable``); the profiles
an earlier core left on sessions no resumed service holds are cleared as the stations come
back (``vpp_core.services.leftovers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from vpp_core.dispatch.clock import DispatchClock
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.fanout import fan_out
from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.ports import CommandResult, FleetView, StationCommands
from vpp_core.dispatch.profiles import ProfileSpec
from vpp_core.services.activations import activation_of
from vpp_core.services.afrr_relay import AfrrRelay
from vpp_core.services.allocation import SessionShare, deliverable_w, plan_service
from vpp_core.services.dropouts import lost_shares
from vpp_core.services.durable import ServiceRecorder, take_back
from vpp_core.services.errors import ServiceNotFoundError
from vpp_core.services.held import HeldService, ServiceStatus
from vpp_core.services.journal import ServiceJournal
from vpp_core.services.leftovers import LeftoverProfiles
from vpp_core.services.products import ServiceRequest
from vpp_core.services.profiles import service_profile
from vpp_core.supervision import TaskSupervisor

__all__ = ["SERVICE_PROFILE_OFFSET", "FrequencyServices", "HeldService", "ServiceStatus"]

log = logging.getLogger(__name__)
#: Keeps the services' profile ids apart from the dispatches' (``profile_id_base + evseId``).
SERVICE_PROFILE_OFFSET = 1_000_000
_Call = Callable[[], Awaitable[CommandResult]]


def _same(a: SessionShare | None, b: SessionShare) -> bool:
    """The same share to the watt (re-sending a profile for float noise is a wasted call)."""
    return a is not None and all(
        round(x) == round(y) for x, y in ((a.discharge_w, b.discharge_w), (a.charge_w, b.charge_w))
    )


def _answer(result: CommandResult | Exception) -> str:
    if isinstance(result, Exception):
        return f"error: {type(result).__name__}: {result}"
    if result.status == "Accepted" or result.reason is None:
        return result.status
    return f"{result.status}: {result.reason}"


class FrequencyServices:
    """The core's frequency services (``async with``: their tasks end with the component)."""

    def __init__(
        self,
        fleet: FleetView,
        commands: StationCommands,
        clock: DispatchClock,
        config: DispatchConfig,
        *,
        supervisor: TaskSupervisor | None = None,
        in_dispatch: Callable[[], Mapping[SessionKey, str]] = dict,
        journal: ServiceJournal | None = None,
    ) -> None:
        """``in_dispatch``: sessions held by running dispatches -> dispatch id (their
        profile sits at the same stackLevel: a service's would replace or fight it).
        ``journal``: services are durable (``services.durable``)."""
        self._recorder = ServiceRecorder(journal)
        self.clock = clock
        self._in_dispatch = in_dispatch
        self._fleet = fleet
        self._commands = commands
        self._config = config
        self._supervisor = supervisor or TaskSupervisor()
        self._services: dict[str, HeldService] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group = asyncio.TaskGroup()
        #: Profiles an earlier core left that no resumed service holds.
        self.leftovers = LeftoverProfiles(
            fleet, commands, clock, config, profile_id=self._profile_id, live=self._live
        )
        self._leftovers_task: asyncio.Task[None] | None = None
        #: aFRR services: the operator's setpoint stream, relayed as AFRRSignal.
        self.afrr = AfrrRelay(fleet, commands, clock, config)

    async def __aenter__(self) -> Self:
        await self._group.__aenter__()
        await self._take_back()  # before the sweep: a resumed service's sessions are live
        work = self._supervisor.keep_running("frequency-service-leftovers", self.leftovers.run)
        self._leftovers_task = self._group.create_task(work, name="frequency-service-leftovers")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks.values():
            task.cancel()
        if self._leftovers_task is not None:
            self._leftovers_task.cancel()
        await self._group.__aexit__(et, e, tb)

    async def _take_back(self) -> None:
        now = self.clock.now()
        for held in await self._recorder.load():
            self._services[held.service_id] = held
            if take_back(held, now=now, resume=self._config.resume_after_restart):
                self._start(held, resumed=True)
            elif held.status is ServiceStatus.INTERRUPTED:
                await self._recorder.save(held)

    def _start(self, held: HeldService, *, resumed: bool = False) -> None:
        hold = self._hold(held, resumed=resumed)
        work = self._supervisor.contain(f"frequency-service-{held.service_id}", hold)
        self._tasks[held.service_id] = self._group.create_task(work, name=held.service_id)

    # -- what the API calls ---------------------------------------------------------------

    def create(self, request: ServiceRequest) -> HeldService:
        """Plan ``request`` over the fleet now and start holding it (profiles go out at once,
        valid from the window's start)."""
        plan = plan_service(
            self._fleet.sessions(), request, config=self._config.planner, busy=self._busy()
        )
        held = HeldService(f"fs-{uuid.uuid4().hex[:12]}", request, plan)
        if plan.shortfall_reason:
            held.events.append(f"capacity not covered: {plan.shortfall_reason}")
        self._services[held.service_id] = held
        self._start(held)
        return held

    def _busy(self, held: HeldService | None = None) -> dict[SessionKey, str]:
        """Sessions another service or a dispatch holds, and ``held``'s drop-outs."""
        busy = {key: f"in dispatch {d}" for key, d in self._in_dispatch().items()}
        busy.update(
            (s.key, f"holds frequency service {other.service_id}")
            for other in self._services.values()
            if other.open and other is not held
            for s in other.plan.shares
        )
        if held is not None:
            busy.update((k, f"dropped out: {r}") for k, r in held.dropped.items())
        busy.update(
            (k, "clearing a profile left by an earlier core") for k in self.leftovers.clearing
        )
        return busy

    def _live(self) -> set[SessionKey]:
        """The sessions this core's open services hold."""
        return {s.key for held in self._services.values() if held.open for s in held.plan.shares}

    def get(self, service_id: str) -> HeldService:
        try:
            return self._services[service_id]
        except KeyError:
            raise ServiceNotFoundError(service_id) from None

    def services(self) -> Sequence[HeldService]:
        return tuple(self._services.values())

    def record_activation(self, station_id: str, detail: Mapping[str, object]) -> bool:
        """A station's ``FREQUENCY_ACTIVATION`` (its gateway's summary, over MQTT): kept by
        each service whose window it started in and that the station held a share of.
        False when none did; ``ValueError`` for a detail that cannot be read."""
        activation = activation_of(station_id, detail)
        kept = False
        for held in self._services.values():
            r = held.request
            if r.start <= activation.started_at < r.end and station_id in held.share_log.stations():
                held.activations.append(activation)
                self._group.create_task(self._recorder.save(held))  # contained: never raises
                kept = True
        return kept

    async def end(self, service_id: str) -> HeldService:
        """End a service early: its profiles are cleared before this returns."""
        held = self.get(service_id)
        task = self._tasks.get(service_id)
        if held.open and task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._clear(held)
            held.status = ServiceStatus.CANCELLED
            held.events.append("ended early by the operator")
            await self._recorder.save(held)
        return held

    # -- the service's life ---------------------------------------------------------------

    async def _hold(self, held: HeldService, *, resumed: bool = False) -> None:
        try:
            if resumed:
                await self._await_stations(held)
            await self._recorder.save(held)  # journaled before its profiles are sent
            await self._send(held, held.plan.shares)
            held.status = ServiceStatus.HOLDING
            await self._watch(held)
        except asyncio.CancelledError:
            raise
        except Exception:
            await self._clear(held)
            held.status = ServiceStatus.FAILED  # once cleared: the status says it is over
            await self._recorder.save(held)
            raise
        await self._clear(held)
        held.status = ServiceStatus.ENDED
        held.events.append("window ended: profiles cleared")
        await self._recorder.save(held)

    async def _await_stations(self, held: HeldService) -> None:
        """Until every share's session is connected again, at most ``resume_wait_s``."""
        deadline = self.clock.now() + timedelta(seconds=self._config.resume_wait_s)
        keys = {s.key for s in held.plan.shares}
        while (now := self.clock.now()) < deadline:
            live = {s.key for s in self._fleet.sessions() if s.connected}
            if keys <= live:
                return
            await self.clock.sleep_until(min(deadline, now + timedelta(seconds=0.5)))

    def _spec(self, key: SessionKey, request: ServiceRequest) -> ProfileSpec:
        return ProfileSpec(
            profile_id=self._profile_id(key),
            transaction_id=key.transaction_id,
            stack_level=self._config.stack_level,
            valid_from=request.start,
            valid_to=request.end,
            max_offline_duration_s=self._config.max_offline_duration_s,
            kind="Absolute",
            legacy_negative_limit=False,
            ocpp_version="ocpp2.1",
        )

    def _profile_id(self, key: SessionKey) -> int:
        return self._config.profile_id_base + SERVICE_PROFILE_OFFSET + key.evse_id

    async def _watch(self, held: HeldService) -> None:
        """Until the window ends, every ``control_period_s``: re-plan when shares are lost."""
        period = timedelta(seconds=self._config.control_period_s)
        while (now := self.clock.now()) < held.request.end:
            self._sample(held, now)
            await self.clock.sleep_until(min(held.request.end, now + period))
            lost = lost_shares(held.plan.shares, held.sent, self._fleet.sessions())
            if lost:
                await self._replan(held, lost)
            await self.afrr.keep_alive(held)
            await self._recorder.save(held)

    def _sample(self, held: HeldService, now: datetime) -> None:
        """The capacity figures now: planned, accepted, and deliverable from live state."""
        deliverable = deliverable_w(
            self._fleet.sessions(), held.request, held.holding,
            config=self._config.planner, at=now,
        )  # fmt: skip
        held.capacity.sample(
            now,
            planned={d.direction.value: d.committed_w for d in held.plan.directions},
            held=held.holding_w(),
            deliverable={d.value: w for d, w in deliverable.items()},
        )

    async def _replan(self, held: HeldService, lost: Mapping[SessionKey, str]) -> None:
        """Move the lost shares to the sessions that remain (or new ones): changed shares get
        a replacement profile (same id), sessions left out of the new plan are cleared."""
        held.dropped.update(lost)
        held.events.append(
            "re-planned after drop-outs: "
            + "; ".join(f"{k.station_id}: {r}" for k, r in lost.items())
        )
        old = {s.key: s for s in held.plan.shares}
        held.plan = plan_service(
            self._fleet.sessions(), held.request, config=self._config.planner,
            busy=self._busy(held),
        )  # fmt: skip
        if held.plan.shortfall_reason:
            held.events.append(f"capacity not covered: {held.plan.shortfall_reason}")
        kept = {s.key for s in held.plan.shares}
        await self._send(held, [s for s in held.plan.shares if not _same(old.get(s.key), s)])
        await self._clear(held, [k for k in old if k not in kept])

    async def _send(self, held: HeldService, shares: Sequence[SessionShare]) -> None:
        calls = [self._set_call(held.request, share) for share in shares]
        results = await self._fan_out(calls)
        answers = [_answer(r) for r in results]
        for share, answer in zip(shares, answers, strict=True):
            held.sent[share.key] = answer
            held.cleared.pop(share.key, None)
        held.share_log.record(self.clock.now(), held.holding)
        refused = sum(a != "Accepted" for a in answers)
        held.events.append(f"profiles sent: {len(shares) - refused} accepted, {refused} not")

    def _set_call(self, request: ServiceRequest, share: SessionShare) -> _Call:
        profile = service_profile(self._spec(share.key, request), request, share)
        key = share.key
        return lambda: self._commands.set_charging_profile(key.station_id, key.evse_id, profile)

    async def _clear(self, held: HeldService, keys: Sequence[SessionKey] | None = None) -> None:
        """Clear ``keys`` (default: every profile planned, whatever the answer was: a
        timed-out or interrupted set may have landed; a clear of none is answered Unknown),
        retrying failures up to ``clear_attempts`` times."""
        if keys is None:
            self.afrr.close(held)
        wanted = [s.key for s in held.plan.shares] if keys is None else keys
        todo = [k for k in wanted if k not in held.cleared]
        for _ in range(self._config.clear_attempts):
            if not todo:
                return
            results = await self._fan_out([self._clear_call(k) for k in todo])
            for key, result in zip(todo, results, strict=True):
                held.cleared[key] = _answer(result)
            todo = [k for k, r in zip(todo, results, strict=True) if isinstance(r, Exception)]
        if todo:
            held.events.append(f"{len(todo)} profiles could not be cleared")
            log.warning("service %s: %d profiles not cleared", held.service_id, len(todo))

    def _clear_call(self, key: SessionKey) -> _Call:
        profile_id = self._profile_id(key)
        return lambda: self._commands.clear_charging_profile(key.station_id, profile_id=profile_id)

    async def _fan_out(self, calls: Sequence[_Call]) -> list[CommandResult | Exception]:
        return await fan_out(
            calls,
            concurrency=self._config.command_concurrency,
            timeout_s=self._config.command_timeout_s,
        )
