"""systemd/v2g-gateway.service under a real systemd, the gateway installed as a charger gets
it and driving v2g-sim on the host. Every assertion reads what systemd (``systemctl show``)
or journald (``journalctl -o json``) inside the container report."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.doubles.waiting import wait_for
from tests.system.gateway.bench import UNIT, GatewayBench, monotonic_us

pytestmark = [pytest.mark.integration, pytest.mark.system]

HOLD_S = 2.0  # how long the frozen simulator keeps the daemon from its first loop report


def test_active_only_after_ready_with_status_line_and_journald_event_fields(
    gateway: GatewayBench,
) -> None:
    # Freeze the simulator: the control loop cannot report, so the daemon cannot send READY=1.
    os.kill(gateway.sim.process.pid, signal.SIGSTOP)
    try:
        gateway.container.systemctl("start", "--no-block", UNIT)
        wait_for(
            lambda: gateway.state()["StatusText"] == "starting the control process",
            timeout_s=30,
            what="the daemon's first STATUS=",
        )
        held_until = time.monotonic() + HOLD_S
        while time.monotonic() < held_until:  # the whole hold: started, not yet ready
            state = gateway.state()
            assert (state["ActiveState"], state["SubState"]) == ("activating", "start"), state
            time.sleep(0.1)
        resumed_us = monotonic_us()
    finally:
        os.kill(gateway.sim.process.pid, signal.SIGCONT)

    state = gateway.wait_state("active", "running", timeout_s=30)
    times = gateway.container.show(
        UNIT, "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic"
    )
    assert int(times["ExecMainStartTimestampMonotonic"]) < resumed_us - HOLD_S * 1e6
    assert int(times["ActiveEnterTimestampMonotonic"]) > resumed_us, (times, resumed_us)
    wait_for(
        lambda: "commanded" in gateway.state()["StatusText"],
        timeout_s=15,
        what="the READY=1 status line",
    )
    status = gateway.container.systemctl("status", "--no-pager", UNIT)
    assert "Active: active (running)" in status
    assert 'Status: "ok; commanded' in status, status

    # A trip is logged with its stable event code as a journald field.
    gateway.wait_discharging()
    faulted_us = monotonic_us()
    gateway.sim.request("fault", kind="ground_fault")
    entry = wait_for(
        lambda: gateway.journal("EVENT_CODE=GROUND_FAULT", since_us=faulted_us),
        timeout_s=10,
        what="EVENT_CODE=GROUND_FAULT",
    )[0]
    assert entry["_SYSTEMD_UNIT"] == UNIT
    assert entry["SYSLOG_IDENTIFIER"] == "v2g-gateway"
    assert entry["PRIORITY"] == "3"  # an error
    assert entry["MESSAGE"].startswith("GROUND_FAULT:")
    assert int(entry["_PID"]) == int(state["MainPID"])
    wait_for(
        lambda: not gateway.sim.status()["contactor_closed"], timeout_s=5, what="contactor open"
    )


def _timespan_us(text: str) -> int:
    """systemd's printed time span ("5s", "1min 30s", "500ms") in µs."""
    units = {"us": 1, "ms": 1_000, "s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000}
    total = 0
    for part in text.split():
        number = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        total += int(float(number) * units[part[len(number) :]])
    return total


def _sample_until(
    gateway: GatewayBench, done: Callable[[dict[str, Any]], bool], *, timeout_s: float
) -> list[tuple[int, dict[str, Any]]]:
    """(monotonic µs, simulator status) every ~20 ms until ``done(status)`` holds."""
    samples: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    while not samples or not done(samples[-1][1]):
        assert time.monotonic() < deadline, f"timed out; last status {samples[-1:]}"
        samples.append((monotonic_us(), gateway.sim.status()))
        time.sleep(0.02)
    return samples


def _distinct(values: list[float]) -> list[float]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def _wait_restarted(gateway: GatewayBench, before: dict[str, str]) -> dict[str, str]:
    def restarted() -> dict[str, str] | None:
        state = gateway.state()
        again = int(state["NRestarts"]) == int(before["NRestarts"]) + 1
        return state if again and state["SubState"] == "running" else None

    after = wait_for(restarted, timeout_s=60, what="the unit restarted and running")
    assert after["MainPID"] != before["MainPID"]
    return after


def test_watchdog_kills_a_stalled_loop_after_the_module_reverted_and_restarts_it(
    gateway: GatewayBench,
) -> None:
    before = gateway.start_running()
    gateway.wait_discharging()
    watchdog_us = _timespan_us(gateway.container.show(UNIT, "WatchdogUSec")["WatchdogUSec"])
    since_us = monotonic_us()

    gateway.container.systemctl("kill", "--kill-whom=main", "--signal=SIGUSR2", UNIT)
    # The module's own revert timer (704 WSetRvrtTms) commands 0 W while the daemon hangs.
    samples = _sample_until(gateway, lambda s: s["reverted"], timeout_s=30)
    reverted_us, reverted = samples[-1]
    assert reverted["setpoint_w"] == 0.0
    assert gateway.main_pid() == int(before["MainPID"])  # systemd has not acted yet

    timeout = gateway.wait_message("Watchdog timeout", since_us=since_us, timeout_s=30)
    stalled = gateway.journal("EVENT_CODE=CONTROL_LOOP_STALLED", since_us=since_us)
    assert stalled, "the daemon did not log CONTROL_LOOP_STALLED"
    timeout_us = int(timeout["__MONOTONIC_TIMESTAMP"])
    assert reverted_us < timeout_us, "systemd's watchdog fired before the module had reverted"
    # Fed until the daemon saw the stall (loop_stall_timeout_s), silent since: systemd
    # acts within WatchdogSec of the last WATCHDOG=1.
    assert 0 < timeout_us - int(stalled[0]["__MONOTONIC_TIMESTAMP"]) <= watchdog_us + 500_000

    gateway.wait_message("Failed with result 'watchdog'", since_us=since_us, timeout_s=10)
    _wait_restarted(gateway, before)
    gateway.wait_discharging()


def test_sigkill_of_the_daemon_restarts_it_after_the_control_process_ramped_down(
    gateway: GatewayBench,
) -> None:
    before = gateway.start_running()
    gateway.wait_discharging()
    control_pid = gateway.control_pid()
    since_us = monotonic_us()

    gateway.container.run("kill", "-9", before["MainPID"])
    # The orphaned control process finishes its lease, ramps to 0 W, opens the contactor.
    samples = _sample_until(gateway, lambda s: not s["contactor_closed"], timeout_s=30)
    setpoints = _distinct([status["setpoint_w"] for _, status in samples])
    assert setpoints[0] == -3000.0
    assert setpoints[-1] == 0.0
    assert len([v for v in setpoints if -3000.0 < v < 0.0]) >= 3, f"no ramp: {setpoints}"
    assert setpoints == sorted(setpoints), f"not a ramp towards 0 W: {setpoints}"
    lost = gateway.journal("EVENT_CODE=SUPERVISOR_LOST", since_us=since_us)
    assert lost
    assert int(lost[0]["_PID"]) == control_pid

    gateway.wait_message("status=9/KILL", since_us=since_us, timeout_s=10)
    _wait_restarted(gateway, before)
    assert "Scheduled restart job" in "\n".join(gateway.journal_lines(since_us=since_us))


def test_a_configuration_error_exits_2_names_the_key_and_is_not_restarted(
    gateway: GatewayBench,
) -> None:
    gateway.configure(control={"ramp_w_per_s": -1.0})
    since_us = monotonic_us()
    result = gateway.container.run("systemctl", "start", UNIT, check=False)
    assert result.returncode != 0
    # systemd decides at exit: "auto-restart" would mean a restart is scheduled.
    state = gateway.wait_state("failed", "failed", timeout_s=30)
    exit_status = gateway.container.show(UNIT, "ExecMainStatus", "ExecMainCode")
    assert exit_status == {"ExecMainStatus": "2", "ExecMainCode": "1"}  # CLD_EXITED, 2
    assert state["Result"] == "exit-code"
    assert state["NRestarts"] == "0"
    lines = gateway.journal_lines(since_us=since_us)
    assert any(
        line.startswith("v2g-gateway[") and "control.ramp_w_per_s" in line for line in lines
    ), lines
    assert not any("Scheduled restart job" in line for line in lines)


def test_stop_ramps_to_zero_opens_the_contactor_and_exits_0_in_time(
    gateway: GatewayBench,
) -> None:
    gateway.start_running()
    gateway.wait_discharging()
    since_us = monotonic_us()

    gateway.container.systemctl("stop", "--no-block", UNIT)
    samples = _sample_until(gateway, lambda s: not s["contactor_closed"], timeout_s=30)
    state = gateway.wait_state("inactive", "dead", timeout_s=60)

    setpoints = _distinct([status["setpoint_w"] for _, status in samples])
    assert setpoints[-1] == 0.0
    assert len([v for v in setpoints if -3000.0 < v < 0.0]) >= 3, f"no ramp: {setpoints}"
    assert setpoints == sorted(setpoints), f"not a ramp towards 0 W: {setpoints}"
    assert all(s["contactor_closed"] for _, s in samples if s["setpoint_w"] != 0.0)
    assert state["Result"] == "success"
    props = gateway.container.show(UNIT, "ExecMainStatus", "TimeoutStopUSec")
    assert props["ExecMainStatus"] == "0"
    stopping = gateway.wait_message("Stopping v2g-gateway", since_us=since_us, timeout_s=5)
    stopped = gateway.wait_message("Deactivated successfully", since_us=since_us, timeout_s=5)
    stop_us = int(stopped["__MONOTONIC_TIMESTAMP"]) - int(stopping["__MONOTONIC_TIMESTAMP"])
    assert 0 < stop_us < _timespan_us(props["TimeoutStopUSec"])
    lines = gateway.journal_lines(since_us=since_us)
    assert any(line.endswith(": stopped cleanly") for line in lines), lines
    # a clean stop is not a stalled loop
    assert not gateway.journal("EVENT_CODE=CONTROL_LOOP_STALLED", since_us=since_us)
