"""The control loop and the supervisor's channel over a real SEQPACKET socket pair, with an
in-memory power stage (the one thing that cannot exist here: power electronics)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

import pytest

from v2g_gateway.control.channel import ControlChannel, ControlEvent, SetpointLease
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.loop import ControlLoop
from v2g_gateway.control.ports import StageMeasurement, StageRatings


@dataclass
class MemoryStage:
    """Follows each setpoint at once; ``faults`` and ``fail_reads`` inject trouble."""

    power_w: float = 0.0
    soc_pct: float = 60.0
    faults: frozenset[str] = frozenset()
    writes: list[float] = field(default_factory=list)
    energized: list[bool] = field(default_factory=list)
    reverts: list[float] = field(default_factory=list)

    async def read_ratings(self) -> StageRatings:
        return StageRatings(11000.0, 11000.0)

    async def read_measurement(self) -> StageMeasurement:
        return StageMeasurement(
            self.power_w, self.soc_pct, 50.0, 230.0, True, 1.0, 2.0, self.faults
        )

    async def write_setpoint(self, power_w: float) -> None:
        self.writes.append(power_w)
        self.power_w = power_w

    async def set_energized(self, energized: bool) -> None:
        self.energized.append(energized)

    async def program_revert(self, *, timeout_s: float, revert_power_w: float = 0.0) -> None:
        self.reverts.append(timeout_s)


@dataclass
class FollowingSensor:
    stage: MemoryStage

    def read_power_w(self) -> float:
        return self.stage.power_w


@dataclass
class Relay:
    closed: bool = True  # left closed by a "previous run"
    operations: list[str] = field(default_factory=list)

    def open(self) -> None:
        self.closed = False
        self.operations.append("open")

    def close(self) -> None:
        self.closed = True
        self.operations.append("close")


@pytest.fixture
def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


async def test_lease_drives_the_stage_and_stop_ramps_down_then_opens(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    stage, relay = MemoryStage(), Relay()
    cfg = ControlSection(period_s=0.01, ramp_w_per_s=100000.0, revert_timeout_s=4.0)
    loop = ControlLoop(
        stage=stage, sensor=FollowingSensor(stage), contactor=relay, sock=pair[1], settings=cfg
    )
    async with ControlChannel(pair[0]) as channel, asyncio.TaskGroup() as group:
        task = group.create_task(loop.run())
        await channel.wait_snapshot(lambda s: s.cycles > 0, timeout_s=5)
        assert relay.operations == ["open"]  # start-up puts the relay in a known state
        assert stage.reverts == [4.0]
        channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=5000.0)
        channel.mark_csms_contact()
        channel.grant_lease(SetpointLease(-8000.0, 30.0))
        snap = await channel.wait_snapshot(lambda s: s.power_w == -5000.0, timeout_s=5)
        assert snap.contactor_closed
        assert snap.commanded_w == -5000.0  # the EV's limit, not the lease
        assert snap.lease_power_w == -8000.0
        assert 0 < snap.lease_remaining_s <= 30.0
        channel.request_stop()
        assert await asyncio.wait_for(task, timeout=5) == 0
    assert stage.writes[-1] == 0.0
    assert relay.operations == ["open", "close", "open"]
    assert stage.energized[-1] is False


async def test_module_fault_reaches_the_supervisor_as_a_coded_event(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    stage, relay = MemoryStage(), Relay()
    cfg = ControlSection(period_s=0.01, ramp_w_per_s=100000.0)
    loop = ControlLoop(
        stage=stage, sensor=FollowingSensor(stage), contactor=relay, sock=pair[1], settings=cfg
    )
    async with ControlChannel(pair[0]) as channel, asyncio.TaskGroup() as group:
        events = channel.subscribe_events()
        task = group.create_task(loop.run())
        channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=5000.0)
        channel.grant_lease(SetpointLease(-2000.0, 30.0))
        await channel.wait_snapshot(lambda s: s.commanded_w == -2000.0, timeout_s=5)
        stage.faults = frozenset({"OVER_TEMP"})
        snap = await channel.wait_snapshot(lambda s: s.tripped, timeout_s=5)
        assert (snap.trip_code, snap.commanded_w, snap.contactor_closed) == (
            "OVER_TEMP",
            0.0,
            False,
        )
        seen: list[ControlEvent] = []
        while not any(e.code == EventCode.OVER_TEMP for e in seen):
            seen.append(await asyncio.wait_for(events.get(), timeout=5))
        channel.request_stop()
        await asyncio.wait_for(task, timeout=5)


async def test_supervisor_gone_means_finish_the_lease_ramp_to_zero_and_exit(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    stage, relay = MemoryStage(), Relay()
    cfg = ControlSection(period_s=0.01, ramp_w_per_s=20000.0)
    loop = ControlLoop(
        stage=stage, sensor=FollowingSensor(stage), contactor=relay, sock=pair[1], settings=cfg
    )
    async with ControlChannel(pair[0]) as channel:
        task = asyncio.create_task(loop.run())
        channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=5000.0)
        channel.grant_lease(SetpointLease(-4000.0, 0.5))
        await channel.wait_snapshot(lambda s: s.commanded_w == -4000.0, timeout_s=5)
    pair[0].close()  # the supervisor dies
    assert await asyncio.wait_for(task, timeout=5) == 0
    ramp = [w for w in stage.writes if -4000.0 < w < 0.0]
    assert ramp, "the drop to zero is ramped"
    assert stage.writes[-1] == 0.0
    assert not relay.closed


@dataclass
class InstantClock:
    """An injected monotonic clock the loop's sleeper moves to each deadline at once."""

    now_s: float = 100.0

    def __call__(self) -> float:
        return self.now_s

    async def wait_until(self, deadline_s: float) -> None:
        self.now_s = max(self.now_s, deadline_s)
        await asyncio.sleep(0)  # the channel's reader runs between cycles

    def block_until(self, deadline_s: float) -> None:
        self.now_s = max(self.now_s, deadline_s)


@dataclass
class TimedRelay(Relay):
    clock: InstantClock = field(default_factory=InstantClock)
    opened_at: list[float] = field(default_factory=list)

    def open(self) -> None:
        super().open()
        self.opened_at.append(self.clock())


async def test_comms_loss_events_are_stamped_when_the_ramp_starts_and_when_the_relay_opens(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    clock = InstantClock()
    stage, relay = MemoryStage(), TimedRelay(clock=clock)
    cfg = ControlSection(period_s=0.1, ramp_w_per_s=2000.0, comms_loss_timeout_s=30.0)
    loop = ControlLoop(
        stage=stage,
        sensor=FollowingSensor(stage),
        contactor=relay,
        sock=pair[1],
        settings=cfg,
        clock=clock,
        sleeper=clock,
    )
    async with ControlChannel(pair[0], clock=clock) as channel, asyncio.TaskGroup() as group:
        events = channel.subscribe_events()
        task = group.create_task(loop.run())
        channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=5000.0)
        channel.grant_lease(SetpointLease(-3000.0, 3600.0))
        channel.mark_csms_contact()
        await channel.wait_snapshot(lambda s: s.power_w == -3000.0, timeout_s=5)
        channel.mark_csms_contact()
        await channel.wait_snapshot(lambda s: s.cycles > 0, timeout_s=5)
        last_contact = channel.last_contact_s
        assert last_contact is not None
        snap = await channel.wait_snapshot(lambda s: s.fail_safe, timeout_s=10)
        assert not snap.contactor_closed
        seen: dict[EventCode, float] = {}
        while EventCode.COMMS_LOSS_FAILSAFE not in seen:
            event = await asyncio.wait_for(events.get(), timeout=5)
            seen[event.code] = event.monotonic_s - last_contact
        channel.request_stop()
        await asyncio.wait_for(task, timeout=5)
    # the open at 30 s - one period, the ramp 3 kW at 2 kW/s + module_settle_s (1 s) + 2
    # periods + comms_loss_margin_s (1 s) before it
    assert seen[EventCode.COMMS_LOSS_RAMP] == pytest.approx(29.9 - 3.7, abs=0.1 + 1e-6)
    assert 29.9 - 1e-6 <= seen[EventCode.COMMS_LOSS_FAILSAFE] <= 30.0 + 1e-6
    assert EventCode.COMMS_LOSS_OPEN_UNDER_LOAD not in seen
    assert relay.opened_at[-1] - last_contact == seen[EventCode.COMMS_LOSS_FAILSAFE]
    assert stage.writes[-1] == 0.0
