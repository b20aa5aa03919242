"""OCPP-J fuzzing of a running ``vpp-core``: how it answers, whether it stays up, whether a
bystander station stays served and its rows keep landing. Prints one JSON document.

The core is a real ``vpp-core run`` child process (TLS CSMS, SQLite fleet file, real
write-behind); the frames come from the seeded generator the CI test uses
(``tests/support/ocpp_fuzz``), spread over ``--connections`` fuzzing stations, while a
bystander sends a ``TransactionEvent`` every ``--bystander-interval`` seconds.

    .venv/bin/python benchmarks/ocpp_fuzz.py                       # 5,000 frames (CI's size)
    .venv/bin/python benchmarks/ocpp_fuzz.py --frames 100000 --connections 8 --seed 7

Figures: frames sent (by kind), answers by type and CALLERROR code, connection closes by
cause and code, rule violations (must be none), core alive, bystander round trips (p50 /
p99 / max ms) and failures, its rows in the database during and after, table row counts
before and after, elapsed time and frames per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.core_process import CoreProcess
from tests.support.ocpp_fuzz.run import CORE_OVERRIDES, fuzz_accounts, run_fuzz
from v2g_common.pki import provision


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ocpp-fuzz-") as tmp:
        work = Path(tmp)
        ids = [a.identity for a in fuzz_accounts(args.connections)]
        pki = await asyncio.to_thread(provision, work / "pki", clients=ids)
        async with CoreProcess(
            work / "core",
            pki,
            stations=fuzz_accounts(args.connections),
            overrides=CORE_OVERRIDES,
            log_level=args.log_level,
        ) as core:
            result = await run_fuzz(
                core,
                frames=args.frames,
                connections=args.connections,
                seed=args.seed,
                bystander_interval_s=args.bystander_interval,
            )
            exit_status = await core.stop()
        log = core.log_text()
    report = result.as_json()
    report["frames_per_s"] = round(result.frames_sent / max(result.elapsed_s, 1e-9))
    report["core_exit_status"] = exit_status
    report["tracebacks_in_core_log"] = log.count("Traceback")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seed", type=int, default=13, help="the CI test uses 13")
    parser.add_argument("--bystander-interval", type=float, default=0.05, help="seconds")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    report = {
        "benchmark": "ocpp_fuzz",
        "python": platform.python_version(),
        "command": " ".join(["benchmarks/ocpp_fuzz.py", *sys.argv[1:]]),
        **asyncio.run(measure(args)),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
