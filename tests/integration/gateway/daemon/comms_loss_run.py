"""One comms-loss episode of the real daemon against v2g-sim over a pty, measured from both
sides: the simulator's contactor and power (polled over its control socket as fast as it
answers) and the daemon's own log lines (each comms-loss event says how long after the last
CSMS contact it happened). Shared by the integration test and ``benchmarks/comms_loss.py``.

The contact source is the local lease with ``counts_as_csms_contact``; "the link is lost" is
a SIGHUP that turns that off while the lease itself keeps coming (like a station's stored
profile while offline), "the link is back" a SIGHUP that turns it on again.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.gateway.daemon.daemon_harness import (
    RunningDaemon,
    RunningSim,
    gateway_config,
    wait_for,
)

__all__ = ["CommsLossRun", "Sample", "run_comms_loss"]

#: The simulated EV and module can both do 11 kW each way.
EV_MAX_W = 11000.0
_AGE = re.compile(r"(COMMS_LOSS_\w+): .*?\((\d+\.\d+) s after the last CSMS contact\)")


@dataclass(frozen=True)
class Sample:
    t_s: float  # monotonic, relative to the cut
    power_w: float
    voltage_v: float
    contactor_closed: bool


@dataclass(frozen=True)
class CommsLossRun:
    power_w: float
    samples: list[Sample]
    #: code -> seconds after the last contact, as the daemon logged them
    logged_ages_s: dict[str, float]
    contact_back_s: float | None

    @property
    def opened_after_cut_s(self) -> float | None:
        """When the simulator first saw the contactor open, after the cut."""
        return next((s.t_s for s in self.samples if not s.contactor_closed), None)

    @property
    def current_at_open_a(self) -> float:
        """The output current the simulator had just before the contactor opened."""
        last = [s for s in self.samples if s.contactor_closed][-1]
        return abs(last.power_w) / last.voltage_v


def _config(tmp_path: Path, sim: RunningSim, power_w: float, control: dict[str, Any]) -> Path:
    return gateway_config(
        tmp_path,
        sim,
        control=control,
        local_lease={
            "power_w": power_w,
            "valid_for_s": 60.0,
            "renew_every_s": 0.05,
            "ev_max_discharge_w": EV_MAX_W,
            "ev_max_charge_w": EV_MAX_W,
        },
    )


def _set_contact(daemon: RunningDaemon, config: Path, *, on: bool) -> None:
    old, new = ("false", "true") if on else ("true", "false")
    text = config.read_text().replace(f"counts_as_csms_contact = {old}", "")
    text = text.replace("[local_lease]\n", f"[local_lease]\ncounts_as_csms_contact = {new}\n")
    config.write_text(text)
    daemon.process.send_signal(signal.SIGHUP)


def _poll(sim: RunningSim, t0: float) -> Sample:
    status = sim.status()
    return Sample(
        time.monotonic() - t0,
        float(status["power_w"]),
        float(status["grid_voltage_v"]),
        bool(status["contactor_closed"]),
    )


def run_comms_loss(
    tmp_path: Path,
    sim: RunningSim,
    start_daemon: Callable[..., RunningDaemon],
    *,
    power_w: float,
    control: dict[str, Any],
    stall_s: float | None = None,
) -> CommsLossRun:
    """Discharge (or charge) at ``power_w``, settled; cut the contact; with ``stall_s`` bring
    it back after that long and watch as long again; else watch until the contactor opens."""
    sim.request("plug-in", ev={"max_discharge_w": EV_MAX_W, "soc_pct": 80.0})
    config = _config(tmp_path, sim, power_w, control)
    daemon = start_daemon(config)
    wait_for(
        lambda: abs(float(sim.status()["power_w"]) - power_w) < 20.0,
        timeout_s=30.0,
        what=f"the module settled at {power_w} W",
    )
    timeout_s = float(control["comms_loss_timeout_s"])
    t0 = time.monotonic()
    _set_contact(daemon, config, on=False)
    samples = [_poll(sim, t0)]
    back_at = None
    end_s = timeout_s + 5.0 if stall_s is None else 2 * stall_s
    while samples[-1].t_s < end_s and (stall_s is not None or samples[-1].contactor_closed):
        if stall_s is not None and back_at is None and samples[-1].t_s >= stall_s:
            _set_contact(daemon, config, on=True)
            back_at = samples[-1].t_s
        samples.append(_poll(sim, t0))
    if stall_s is None:
        wait_for(
            lambda: "COMMS_LOSS_FAILSAFE" in daemon.log(), timeout_s=5.0, what="the open's log"
        )
    ages = {code: float(age) for code, age in _AGE.findall(daemon.log())}
    return CommsLossRun(power_w, samples, ages, back_at)
