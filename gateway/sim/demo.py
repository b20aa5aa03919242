"""``vpp-demo``: a simulated fleet dispatched end to end (core + gateways + simulators)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vpp-demo", description=__doc__)
    parser.add_argument("--stations", type=int, default=50, help="simulated chargers")
    parser.parse_args(argv)
    print("vpp-demo: not yet implemented (issue 9)")
    return 1
