"""Comms-loss fail-safe of the real daemon against v2g-sim over a pty: time from the last CSMS
contact to the contactor opening, and the current at that moment, at 5 kW and 11 kW.

Each run starts ``v2g-sim serve`` (a pty pair; the module lags its setpoint with a 0.8 s time
constant) and ``v2g-gateway`` on it with the field's settings (10 Hz loop, 2 kW/s ramp, 30 s
timeout, a local lease discharging at the chosen power and counting as CSMS contact), waits
for the module to settle, then stops the contact (SIGHUP) and watches the simulator until the
contactor opens. Figures per run:

- ``contact_to_open_s``: the daemon's own account (its COMMS_LOSS_FAILSAFE log line: the
  event's time, stamped after the relay opened, minus the last contact's);
- ``contact_to_ramp_s``: the same for COMMS_LOSS_RAMP;
- ``cut_to_open_seen_s``: the cut (SIGHUP) to the first simulator poll showing the contactor
  open (the last contact was at most ``renew_every_s`` = 0.05 s before the cut);
- ``current_at_open_a``: the simulator's output current at its last poll before the open.

Prints one JSON object; about 45 s per run. Run it on an otherwise idle machine:

    .venv/bin/python benchmarks/comms_loss.py
    .venv/bin/python benchmarks/comms_loss.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.gateway.daemon.comms_loss_run import CommsLossRun, run_comms_loss
from tests.integration.gateway.daemon.daemon_harness import daemon_starter, running_sim

CONTROL = {"period_s": 0.1, "ramp_w_per_s": 2000.0, "comms_loss_timeout_s": 30.0}


def one_run(power_w: float, control: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="comms-loss-") as tmp:
        tmp_path = Path(tmp)
        with (
            running_sim(tmp_path / "sim.sock") as sim,
            daemon_starter(tmp_path, sim) as start,
        ):
            run = run_comms_loss(tmp_path, sim, start, power_w=power_w, control=control)
    return _figures(run)


def _figures(run: CommsLossRun) -> dict[str, Any]:
    ages = run.logged_ages_s
    opened = run.opened_after_cut_s
    return {
        "power_w": run.power_w,
        "contact_to_ramp_s": ages.get("COMMS_LOSS_RAMP"),
        "contact_to_open_s": ages.get("COMMS_LOSS_FAILSAFE"),
        "cut_to_open_seen_s": None if opened is None else round(opened, 3),
        "current_at_open_a": round(run.current_at_open_a, 3),
        "opened_under_load": "COMMS_LOSS_OPEN_UNDER_LOAD" in ages,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--powers-w", type=float, nargs="+", default=[-5000.0, -11000.0])
    parser.add_argument("--runs", type=int, default=1, help="runs per power")
    parser.add_argument("--ramp-w-per-s", type=float, default=CONTROL["ramp_w_per_s"])
    args = parser.parse_args(argv)
    control = {**CONTROL, "ramp_w_per_s": args.ramp_w_per_s}
    runs = [one_run(p, control) for p in args.powers_w for _ in range(args.runs)]
    limit_s = control["comms_loss_timeout_s"] + control["period_s"]
    result = {
        "benchmark": "comms_loss",
        "settings": control,
        "limit_s": limit_s,
        "contactor_open_max_a": 0.5,
        "runs": runs,
        "all_within_limit_at_zero": all(
            r["contact_to_open_s"] is not None
            and r["contact_to_open_s"] <= limit_s
            and r["current_at_open_a"] <= 0.5
            for r in runs
        ),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
