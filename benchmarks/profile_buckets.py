"""Where the CSMS's time goes: a py-spy profile of the core, in the buckets of docs/scaling.md.

Reads py-spy's ``raw`` output (one folded stack and its sample count per line) and counts
each sample in the first bucket whose marker appears anywhere in its stack; idle waits
(selectors, idle worker threads) are left out of the shares. With ``--run`` (the JSON that
``csms_load.py`` printed for the profiled run) each share is also given in µs: share x that
run's core CPU per message. Prints one JSON object.

    .venv/bin/python benchmarks/csms_load.py --closed-loop 50 --duration 15 > run.json &
    sleep 6; .venv/bin/py-spy record --pid "$(pgrep -f 'vpp_core.app')" -r 250 -d 10 \\
        -f raw -o core.raw
    wait; .venv/bin/python benchmarks/profile_buckets.py core.raw --run run.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

#: (bucket, markers): a sample goes to the first bucket one of whose markers is in a frame.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "idle",
        (
            "concurrent/futures/thread.py:81",
            "EpollSelector.select",
            "_PollLikeSelector.select",
            "aiosqlite/core.py:59",
            "aiosqlite/core.py:63",
        ),
    ),
    (
        "per-message metrics",
        ("prometheus_client", "CsmsMetrics.observe_message", "_MessageTally", "count_frame"),
    ),
    ("send: socket write (transport.write)", ("_SelectorSocketTransport.write",)),
    ("send: websockets framing", ("Protocol.send_text",)),
    (
        "send: the rest (send_context, send, drain)",
        ("Connection.send (websockets", "OcppEndpoint._send_frame", "direct_send"),
    ),
    ("schema validation", ("PayloadCodec._validate",)),
    ("keys camel -> snake", ("payload_from_wire", "payload_to_wire")),
    ("answer encode", ("PayloadCodec.encode_response", "encode_frame")),
    ("frame decode (orjson)", ("decode_frame",)),
    ("fleet handler", ("StationEndpoint.on_transaction_event", "_call_route")),
    (
        "receive (websockets read, parse, hand-over; throttling)",
        ("ThrottledConnection.recv", "_read_ready", "Connection.recv (websockets"),
    ),
    ("write-behind", ("writer_thread", "sqlalchemy", "aiosqlite/core.py:158")),
)


def bucket_of(stack: str) -> str:
    for name, markers in BUCKETS:
        if any(marker in stack for marker in markers):
            return name
    return "the rest (event loop, routing, coroutine switches)"


def count(raw: Path) -> Counter[str]:
    samples: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if stack and number.isdigit():
            samples[bucket_of(stack)] += int(number)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("raw", type=Path, help="py-spy record -f raw output")
    parser.add_argument("--run", type=Path, help="csms_load.py's JSON of the profiled run")
    args = parser.parse_args(argv)
    samples = count(args.raw)
    busy = sum(n for name, n in samples.items() if name != "idle")
    us_per_message = None
    if args.run is not None:
        run = json.loads(args.run.read_text())
        us_per_message = run["core"]["cpu_pct_of_one_core"] * 1e4 / run["msg_per_s"]
    shares = {
        name: {
            "pct": round(100 * n / busy, 1),
            "us": None if us_per_message is None else round(us_per_message * n / busy, 1),
        }
        for name, n in samples.most_common()
        if name != "idle"
    }
    out = {
        "busy_samples": busy,
        "idle_samples": samples["idle"],
        "run_us_per_message": None if us_per_message is None else round(us_per_message, 1),
        "buckets": shares,
    }
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
