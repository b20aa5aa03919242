"""OCPP Reset (B11/B12) of the real daemon by a foreign CSMS (the ``ocpp`` library's
ChargePoint): the transaction ends (ResetCommand / ImmediateReset), the power module ramps to
0 W, the contactor opens, the daemon exits with the restart status systemd restarts on, and the
next run boots with reason RemoteReset."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.v21 import call as call21

from tests.doubles.foreign_csms import ForeignCsms
from tests.doubles.station_setup import PASSWORD
from tests.doubles.threaded import InThread
from tests.integration.gateway.daemon.daemon_harness import (
    RunningDaemon,
    RunningSim,
    gateway_config,
    wait_for,
)
from v2g_gateway.supervisor import RESTART_STATUS

pytestmark = pytest.mark.integration

CHARGE_W = 3000.0


def station_section(url: str, state_dir: Path) -> dict[str, Any]:
    return {
        "csms_url": url,
        "identity": "CS-0001",
        "security_profile": 1,
        "password": PASSWORD,
        "state_dir": str(state_dir),
        "default_charge_w": CHARGE_W,
        "control_tick_s": 0.1,
        "lease_valid_for_s": 1.0,
        "contact_probe_interval_s": 1.0,
        "sampled_data_interval_s": 60.0,
    }


def test_reset_ramps_to_zero_opens_the_contactor_and_restarts(
    tmp_path: Path, v2g_sim: RunningSim, start_daemon: Callable[..., RunningDaemon]
) -> None:
    with InThread[ForeignCsms](lambda: ForeignCsms(passwords={"CS-0001": PASSWORD})) as csms:
        url = csms.double.url
        config = gateway_config(
            tmp_path,
            v2g_sim,
            local_lease={"enabled": False},
            station=station_section(url, tmp_path / "state"),
        )
        daemon = start_daemon(config)
        wait_for(
            lambda: v2g_sim.status()["setpoint_w"] == CHARGE_W,
            timeout_s=30.0,
            what="charging at the station's lease",
        )
        assert daemon.contactor_closed()
        status = csms.run(lambda c: c.call(call21.Reset(type="Immediate"))).status
        assert status == "Accepted"
        rows = []
        while daemon.process.poll() is None:
            rows.append(float(v2g_sim.status()["setpoint_w"]))
            time.sleep(0.01)
        assert daemon.process.wait(timeout=30) == RESTART_STATUS
        assert [w for w in rows if 0.0 < w < CHARGE_W], "the reset must ramp, not step"
        assert v2g_sim.status()["setpoint_w"] == 0.0
        assert not daemon.contactor_closed()
        ended = csms.double.calls("TransactionEvent")[-1]
        assert ended["eventType"] == "Ended"
        assert ended["triggerReason"] == "ResetCommand"
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        # systemd's part: start it again; it tells the CSMS why it booted.
        start_daemon(config)
        wait_for(
            lambda: len(csms.double.calls("BootNotification")) >= 2,
            timeout_s=30.0,
            what="the second BootNotification",
        )
        assert [b["reason"] for b in csms.double.calls("BootNotification")] == [
            "PowerUp",
            "RemoteReset",
        ]
        assert csms.double.violations == []
