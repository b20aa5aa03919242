"""The task supervisor: a failure is logged once with its cause, counted, contained (restarted
with back-off, or ended), and cancellation still stops the task."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from vpp_core.supervision import TaskSupervisor


class Sleeps:
    """An injected sleep: records the back-off delays, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)


def supervisor(registry: CollectorRegistry, sleeps: Sleeps, clock: list[float]) -> TaskSupervisor:
    return TaskSupervisor(
        registry, restart_min_s=1.0, restart_max_s=8.0, sleep=sleeps, monotonic=lambda: clock[0]
    )


async def test_a_failing_task_is_restarted_with_back_off_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry, sleeps, clock = CollectorRegistry(), Sleeps(), [0.0]
    tasks = supervisor(registry, sleeps, clock)
    runs: list[int] = []

    async def run() -> None:
        runs.append(len(runs))
        if len(runs) <= 5:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")

    with caplog.at_level(logging.DEBUG, logger="vpp_core.supervision"):
        await tasks.keep_running("fleet-write-behind", run)
    assert len(runs) == 6  # five failures, then it ran to its end
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert tasks.failure_count("fleet-write-behind") == 5
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "logged once"
    assert errors[0].exc_info is not None
    assert "OverflowError" in errors[0].getMessage()
    exposition = generate_latest(registry).decode()
    assert 'vpp_core_task_failures_total{task="fleet-write-behind"} 5.0' in exposition


async def test_back_off_starts_over_after_a_long_healthy_run() -> None:
    registry, sleeps, clock = CollectorRegistry(), Sleeps(), [0.0]
    tasks = supervisor(registry, sleeps, clock)
    runs = 0

    async def run() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            clock[0] += 100.0  # this run lasted longer than restart_max_s before it failed
        if runs < 5:
            raise RuntimeError("boom")

    await tasks.keep_running("heap-policy", run)
    assert sleeps.delays == [1.0, 2.0, 1.0, 2.0]


async def test_a_one_shot_failure_is_contained_not_raised() -> None:
    tasks = TaskSupervisor(CollectorRegistry())

    async def dispatch() -> None:
        raise KeyError("session gone")

    await tasks.contain("dispatch", dispatch())
    assert tasks.failure_count("dispatch") == 1


async def test_cancellation_stops_a_supervised_task() -> None:
    tasks = TaskSupervisor(CollectorRegistry())
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(tasks.keep_running("registry-refresh", forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tasks.failure_count("registry-refresh") == 0


async def test_a_failure_inside_a_task_group_no_longer_ends_its_siblings() -> None:
    """What killed the core: a child's exception cancels its TaskGroup's other tasks."""
    tasks = TaskSupervisor(CollectorRegistry(), restart_min_s=0.0)
    served = asyncio.Event()
    failures = 0

    async def failing() -> None:
        nonlocal failures
        failures += 1
        if failures == 1:
            raise OverflowError("boom")

    async def serving() -> None:
        await asyncio.sleep(0.05)
        served.set()

    async with asyncio.TaskGroup() as group:
        group.create_task(tasks.keep_running("fleet-write-behind", failing))
        group.create_task(tasks.keep_running("csms", serving))
    assert served.is_set()
    assert failures == 2


async def test_stopping_cuts_the_back_off_short_and_ends_restarts() -> None:
    """The write-behind failed and waits out a 60 s back-off when the core is told to stop:
    it runs again at once (its last write), and is not restarted after another failure."""
    tasks = TaskSupervisor(CollectorRegistry(), restart_min_s=60.0, restart_max_s=60.0)
    runs = 0
    failed = asyncio.Event()

    async def run() -> None:
        nonlocal runs
        runs += 1
        failed.set()
        raise RuntimeError("database driver bug")

    task = asyncio.create_task(tasks.keep_running("fleet-write-behind", run))
    await failed.wait()
    await asyncio.sleep(0)  # into its back-off
    tasks.hurry()
    async with asyncio.timeout(1.0):  # not the 60 s back-off
        await task
    assert runs == 2
    assert tasks.failure_count("fleet-write-behind") == 2
