"""systemd/v2g-gateway.service under a real systemd, the gateway installed as a charger gets
it and driving v2g-sim on the host. Every assertion reads what systemd (``systemctl show``)
or journald (``journalctl -o json``) inside the container report."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.waiting import wait_for
from tests.system.gateway.bench import UNIT, GatewayBench
from tests.system.unit import monotonic_us, timespan_us

# the first test of a module also builds its container (and, cold, the cached root and wheels)
pytestmark = [pytest.mark.integration, pytest.mark.system, pytest.mark.timeout(900)]

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
    watchdog_us = timespan_us(gateway.container.show(UNIT, "WatchdogUSec")["WatchdogUSec"])
    assert watchdog_us > 0, "WatchdogSec= is not set"
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
    assert 0 < stop_us < timespan_us(props["TimeoutStopUSec"])
    lines = gateway.journal_lines(since_us=since_us)
    assert any(line.endswith(": stopped cleanly") for line in lines), lines
    # a clean stop is not a stalled loop
    assert not gateway.journal("EVENT_CODE=CONTROL_LOOP_STALLED", since_us=since_us)


PROBE = "/usr/local/libexec/v2g-hardening-probe"
ALLOWED_WRITES = ("/var/lib/v2g-gateway", "/run/v2g-gateway", "/tmp", "/var/tmp")
#: Owned by the service's user, so only ProtectSystem=strict keeps it from writing there.
OWNED_ELSEWHERE = ("/srv/v2g-probe", "/var/log/v2g-probe", "/opt/v2g-gateway/v2g-probe")


def _kernel_has_char_class(gateway: GatewayBench, name: str) -> bool:
    devices = gateway.container.run("cat", "/proc/devices").stdout
    return any(line.split()[1:] == [name] for line in devices.splitlines() if line[:1] == " ")


def test_the_sandbox_writes_only_its_own_directories_and_opens_only_allowed_devices(
    gateway: GatewayBench,
) -> None:
    uid = int(gateway.container.run("id", "-u", "v2g-gateway").stdout)
    for path in OWNED_ELSEWHERE:
        (gateway.root / path.lstrip("/")).mkdir(exist_ok=True)
        os.chown(gateway.root / path.lstrip("/"), uid, -1)
    nodes = {  # in the container's own /dev: what a charger's udev would make
        "/dev/ttyS1": ("4", "65", "dialout"),  # DeviceAllow=char-ttyS
        "/dev/i2c-1": ("89", "1", "i2c"),  # DeviceAllow=char-i2c
        "/dev/v2g-unlisted": ("10", "200", "v2g-gateway"),  # misc: not allowed
    }
    for node, (major, minor, group) in nodes.items():
        gateway.container.run("rm", "-f", node)
        gateway.container.run("mknod", "-m", "0660", node, "c", major, minor)
        gateway.container.run("chgrp", group, node)
    probe = gateway.root / PROBE.lstrip("/")
    probe.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("hardening_probe.py"), probe)
    paths = (*ALLOWED_WRITES, *OWNED_ELSEWHERE, "/etc/v2g-gateway", "/root")
    gateway.drop_in(
        "hardening-probe",
        f"[Service]\nExecStartPost=/usr/bin/python3 {PROBE} {' '.join(paths)} -- "
        f"{' '.join(nodes)}\n",
    )
    since_us = monotonic_us()
    gateway.start_running()
    line = gateway.wait_message("HARDENING-PROBE ", since_us=since_us, timeout_s=30)
    report = json.loads(line["MESSAGE"].removeprefix("HARDENING-PROBE "))

    print("probe:", report)
    assert report["uid"] == uid
    assert {path: report["write"][path] for path in ALLOWED_WRITES} == dict.fromkeys(
        ALLOWED_WRITES, "ok"
    )
    assert {path: report["write"][path] for path in OWNED_ELSEWHERE} == dict.fromkeys(
        OWNED_ELSEWHERE, "EROFS"
    )
    assert report["write"]["/etc/v2g-gateway"] in ("EROFS", "EACCES")
    assert report["write"]["/root"] in ("EACCES", "ENOENT")  # ProtectHome=yes
    assert report["open"]["/dev/v2g-unlisted"] == "EPERM"  # the device cgroup said no
    assert report["open"]["/dev/ttyS1"] not in ("EPERM", "EACCES", "ENOENT")
    # systemd resolves char-i2c from /proc/devices when the unit starts: without the
    # kernel's i2c-dev (this test host) nothing matches and the node stays closed.
    expect_i2c_open = _kernel_has_char_class(gateway, "i2c")
    assert (report["open"]["/dev/i2c-1"] != "EPERM") == expect_i2c_open, report["open"]


def test_the_control_process_runs_sched_fifo_with_locked_memory(gateway: GatewayBench) -> None:
    since_us = monotonic_us()
    gateway.start_running()
    rtprio = _limit(gateway, gateway.control_pid(), "Max realtime priority")
    if rtprio < 50:
        # systemd could not raise the hard limit (this host withholds CAP_SYS_RESOURCE from
        # the container): the daemon says so and runs anyway. Prove the rest of the path
        # (seccomp filter, no RestrictRealtime, the control process applying it) with the
        # capabilities that stand in for the limits.
        assert gateway.wait_message("SCHED_FIFO 50 not applied", since_us=since_us, timeout_s=5)
        gateway.container.systemctl("stop", UNIT)
        gateway.drop_in(
            "realtime-stand-in",
            "[Service]\nCapabilityBoundingSet=CAP_SYS_NICE CAP_IPC_LOCK\n"
            "AmbientCapabilities=CAP_SYS_NICE CAP_IPC_LOCK\n",
        )
        since_us = monotonic_us()
        gateway.start_running()
    control, main = gateway.control_pid(), gateway.main_pid()
    chrt = gateway.container.run("chrt", "-p", str(control)).stdout
    assert "SCHED_FIFO" in chrt, chrt
    assert "priority: 50" in chrt, chrt
    sched = gateway.container.run("cat", f"/proc/{control}/sched").stdout
    assert re.search(r"^policy\s+:\s+1$", sched, re.MULTILINE), sched  # SCHED_FIFO
    assert "SCHED_OTHER" in gateway.container.run("chrt", "-p", str(main)).stdout
    locked = gateway.container.run("grep", "VmLck", f"/proc/{control}/status").stdout
    assert int(locked.split()[1]) > 0, locked
    assert not [line for line in gateway.journal_lines(since_us=since_us) if "not applied" in line]
    limits = gateway.container.show(UNIT, "LimitRTPRIO", "LimitMEMLOCK", "RestrictRealtime")
    assert limits == {"LimitRTPRIO": "80", "LimitMEMLOCK": "infinity", "RestrictRealtime": "no"}


def _limit(gateway: GatewayBench, pid: int, name: str) -> int:
    """The soft value of one of /proc/PID/limits' rows (unlimited = a large number)."""
    for row in gateway.container.run("cat", f"/proc/{pid}/limits").stdout.splitlines():
        if row.startswith(name):
            soft = row[len(name) :].split()[0]
            return 1 << 62 if soft == "unlimited" else int(soft)
    raise AssertionError(f"no {name!r} in /proc/{pid}/limits")
