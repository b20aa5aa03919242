"""ISO 15118-20 DC_BPT session timings, from the logs of a real run (issue 17).

Each run is the integration tests' bench (tests/integration/ev15118/harness.py): a veth pair
with the EV's end in its own network namespace, the gateway daemon with its SECC process
(iso15118 0.31.2 in .venv-iso15118), v2g-sim's power module (3 kW/s ramp in the gateway) and
the simulator's EVCC, and a raw OCPP 2.1 CSMS double. The VPP's -7 kW CentralSetpoint is
installed as soon as the EV's needs arrive (NotifyEVChargingNeeds, sent after the EV's
ScheduleExchange: the station refuses a discharge before it knows the session is BPT), then
changed to -3 kW once the EV discharges. Figures per run:

- ``setup_to_charge_loop_s``: the gateway's log, ``ISO 15118 state SessionSetup`` to
  ``ISO 15118 state DCChargeLoop``;
- ``setup_to_first_discharge_s``: ``SessionSetup`` to the gateway's ``first discharge current``
  line (the first charge-loop request whose present power is negative);
- ``setpoint_to_ev_target_s``: SetChargingProfile(-3 kW) sent to the EVCC's log line
  ``EV: EVSE target -3000 W`` (the first charge-loop response carrying it);
- ``setpoint_to_ev_present_s``: the same to the EV's present power within 5 % of -3 kW (the
  EVCC's status file, polled every 20 ms; the 4 kW step takes 1.3 s of ramp).

Needs root (ip netns) and scripts/setup. Prints one JSON object (each run, and the median of
each figure); about 45 s per run:

    .venv/bin/python benchmarks/iso15118_timings.py --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.doubles.waiting import eventually
from tests.integration.ev15118.harness import Iso15118Bench, iso15118_bench
from tests.integration.ev15118.test_iso15118_session import EV, setpoint_profile

_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"


def _stamp(text: str, marker: str) -> float:
    """The wall time of the first log line containing ``marker`` (naive local = UTC here)."""
    match = re.search(_STAMP + r"[^\n]*" + re.escape(marker), text)
    if match is None:
        raise LookupError(f"no log line with {marker!r}")
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


async def _set(bench: Iso15118Bench, tx_id: str, setpoint_w: float) -> float:
    sent = time.time()
    profile = setpoint_profile(tx_id, setpoint_w)
    answer = await bench.csms.call(
        "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}, timeout_s=30.0
    )
    assert answer["status"] == "Accepted", answer
    return sent


async def one_run(tmp: Path, tag: str) -> dict[str, float]:
    async with iso15118_bench(tmp, spec=EV, tag=tag) as bench:
        csms = bench.csms
        await csms.wait_for(lambda c: bool(c.calls("NotifyEVChargingNeeds")), timeout_s=90)
        tx_id = str(csms.calls("TransactionEvent")[0]["transactionInfo"]["transactionId"])
        await _set(bench, tx_id, -7000.0)
        await eventually(lambda: bench.ev().get("present_w", 0.0) <= -6650.0, timeout_s=90)
        sent = await _set(bench, tx_id, -3000.0)
        await eventually(
            lambda: "EV: EVSE target -3000 W" in bench.evcc_log.read_text(), timeout_s=20
        )
        await eventually(lambda: bench.ev().get("present_w", -1e9) >= -3150.0, timeout_s=20)
        present_s = time.time() - sent
        log = bench.daemon.log()
        setup = _stamp(log, "ISO 15118 state SessionSetup")
        return {
            "setup_to_charge_loop_s": _stamp(log, "ISO 15118 state DCChargeLoop") - setup,
            "setup_to_first_discharge_s": _stamp(log, "first discharge current") - setup,
            "setpoint_to_ev_target_s": _stamp(bench.evcc_log.read_text(), "EV: EVSE target -3000 W")
            - sent,
            "setpoint_to_ev_present_s": present_s,
        }


async def main_async(runs: int, keep: Path | None) -> dict[str, Any]:
    results = []
    for i in range(runs):
        if keep is not None:  # the logs stay for reading
            (keep / f"run-{i}").mkdir(parents=True)
            results.append(await one_run(keep / f"run-{i}", tag=f"b{i}"))
            continue
        with tempfile.TemporaryDirectory(prefix="iso15118-timings-") as tmp:
            results.append(await one_run(Path(tmp), tag=f"b{i}"))
    medians = {key: round(statistics.median(r[key] for r in results), 3) for key in results[0]}
    return {
        "runs": [{k: round(v, 3) for k, v in r.items()} for r in results],
        "median": medians,
        "samples": runs,
        "setup": "DC_BPT Dynamic, 3 kW/s ramp, station tick 0.1 s, EV charge loop every ~0.2 s",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep each run's logs under this new directory")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.runs, args.keep)), indent=2))


if __name__ == "__main__":
    main()
