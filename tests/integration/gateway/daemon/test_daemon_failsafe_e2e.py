"""End to end against v2g-sim on a pty: the real daemon, its control process, the SunSpec
map over Modbus RTU, and the faults an installer fears (a dead supervisor, kill -9)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.integration.gateway.daemon.daemon_harness import (
    RunningDaemon,
    RunningSim,
    gateway_config,
    wait_for,
)

pytestmark = pytest.mark.integration

LEASE_W = -3000.0
RAMP_W_PER_S = 3000.0
VALID_FOR_S = 3.0
RENEW_S = 0.5
PERIOD_S = 0.1
REVERT_S = 2.0


def discharging(sim: RunningSim) -> bool:
    return bool(sim.status()["setpoint_w"] == LEASE_W)


Samples = list[tuple[float, float]]


def sample_setpoints(sim: RunningSim, until: Callable[[float, Samples], bool]) -> Samples:
    """(monotonic time, module setpoint) as fast as the control socket answers."""
    rows: Samples = []
    while True:
        now = time.monotonic()
        rows.append((now, float(sim.status()["setpoint_w"])))
        if until(now, rows):
            return rows


def test_killing_the_supervisor_leaves_the_loop_ramping_to_zero_at_lease_expiry(
    tmp_path: Path, v2g_sim: RunningSim, start_daemon: Callable[..., RunningDaemon]
) -> None:
    daemon = start_daemon(gateway_config(tmp_path, v2g_sim))
    wait_for(lambda: discharging(v2g_sim), timeout_s=20.0, what="discharge at the lease")
    control_pid = daemon.control_pid()
    daemon.extra_pids.append(control_pid)
    os.kill(daemon.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # The last renewal came at most RENEW_S before the kill: expiry in [kill+2.5 s, kill+3 s].
    # spec: 0 W within ramp time + one period of expiry; the slack absorbs a loaded CI host
    bound = killed_at + VALID_FOR_S + abs(LEASE_W) / RAMP_W_PER_S + PERIOD_S + 1.0
    rows = sample_setpoints(
        v2g_sim, until=lambda now, rows: now > bound or (now > killed_at + 1 and rows[-1][1] == 0)
    )
    held = [w for t, w in rows if t < killed_at + VALID_FOR_S - RENEW_S - 0.2]
    assert held
    assert all(w == LEASE_W for w in held), "the lease must hold until it expires"
    ramp = [w for _, w in rows if LEASE_W < w < 0.0]
    assert len(ramp) >= 3, f"expected a ramp, got {sorted(set(w for _, w in rows))}"
    assert rows[-1][1] == 0.0
    zero_at = next(t for t, w in rows if w == 0.0)
    assert zero_at <= bound
    # alone, the loop finishes its job: contactor open, process gone
    wait_for(
        lambda: not psutil.pid_exists(control_pid) or _zombie(control_pid),
        timeout_s=5.0,
        what="the orphaned control process to exit",
    )
    assert not daemon.contactor_closed()


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_9_of_the_whole_daemon_reverts_the_module_within_its_revert_time(
    tmp_path: Path, v2g_sim: RunningSim, start_daemon: Callable[..., RunningDaemon]
) -> None:
    daemon = start_daemon(gateway_config(tmp_path, v2g_sim))
    wait_for(lambda: discharging(v2g_sim), timeout_s=20.0, what="discharge at the lease")
    assert v2g_sim.status()["revert_remaining_s"] is not None  # the loop armed the timer
    os.killpg(daemon.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    daemon.process.wait(timeout=5)
    rows = sample_setpoints(v2g_sim, until=lambda now, _: now > killed_at + REVERT_S + 1.0)
    early = [w for t, w in rows if t < killed_at + REVERT_S - PERIOD_S - 0.3]
    assert early
    assert all(w == LEASE_W for w in early), "nothing but the module stops it"
    reverted_at = next(t for t, w in rows if w == 0.0)
    assert reverted_at - killed_at <= REVERT_S + 0.3
    assert all(w == 0.0 for t, w in rows if t >= reverted_at)


def test_sigterm_ramps_to_zero_opens_the_contactor_and_exits_0(
    tmp_path: Path, v2g_sim: RunningSim, start_daemon: Callable[..., RunningDaemon]
) -> None:
    daemon = start_daemon(gateway_config(tmp_path, v2g_sim, local_lease={"valid_for_s": 60.0}))
    wait_for(lambda: discharging(v2g_sim), timeout_s=20.0, what="discharge at the lease")
    assert daemon.contactor_closed()
    daemon.process.send_signal(signal.SIGTERM)
    rows = sample_setpoints(v2g_sim, until=lambda *_: daemon.process.poll() is not None)
    assert daemon.process.wait(timeout=10) == 0
    assert [w for _, w in rows if LEASE_W < w < 0.0], "SIGTERM must ramp, not step"
    assert v2g_sim.status()["setpoint_w"] == 0.0
    assert not daemon.contactor_closed()
    assert "stopped cleanly" in daemon.log()


def test_sighup_reloads_limits_and_a_module_fault_trips(
    tmp_path: Path, v2g_sim: RunningSim, start_daemon: Callable[..., RunningDaemon]
) -> None:
    config = gateway_config(tmp_path, v2g_sim, local_lease={"valid_for_s": 60.0})
    daemon = start_daemon(config)
    wait_for(lambda: discharging(v2g_sim), timeout_s=20.0, what="discharge at the lease")
    config.write_text(
        config.read_text().replace("[control]\n", "[control]\nsite_max_export_w = 1000.0\n")
    )
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(
        lambda: v2g_sim.status()["setpoint_w"] == -1000.0,
        timeout_s=5.0,
        what="the reloaded site export limit",
    )
    good = config.read_text()
    config.write_text(good.replace("site_max_export_w = 1000.0", "site_max_export_w = -1.0"))
    daemon.process.send_signal(signal.SIGHUP)  # a broken file is refused, old limits stay
    wait_for(lambda: "not reloaded" in daemon.log(), timeout_s=5.0, what="the refusal")
    assert "control.site_max_export_w" in daemon.log()
    assert daemon.process.poll() is None
    assert v2g_sim.status()["setpoint_w"] == -1000.0
    v2g_sim.request("fault", kind="ground_fault")
    wait_for(lambda: not daemon.contactor_closed(), timeout_s=5.0, what="the trip")
    assert v2g_sim.status()["setpoint_w"] == 0.0
    wait_for(lambda: "GROUND_FAULT" in daemon.log(), timeout_s=5.0, what="the logged code")


def test_absent_hardware_fails_start_up_with_status_1_and_says_why(
    tmp_path: Path, v2g_sim: RunningSim, start_daemon: Callable[..., RunningDaemon]
) -> None:
    config = gateway_config(
        tmp_path, v2g_sim, simulator={"socket": str(tmp_path / "no-such-simulator.sock")}
    )
    daemon = start_daemon(config, env={"NOTIFY_SOCKET": ""})
    assert daemon.process.wait(timeout=30) == 1
    log = daemon.log()
    assert "no-such-simulator.sock" in log
    assert "start-up failed" in log
