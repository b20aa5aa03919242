"""``vpp-demo``: a simulated fleet dispatched end to end, on this machine alone.

Starts a PKI, a TLS mosquitto, the VPP core (vpp-core run: CSMS, fleet on SQLite, dispatch,
HTTP API, ingest) and N edge gateways (our station, control law and uplink, with simulated
power modules and EVs), plugs in EVs with varied SoC, limits and departure times, posts a
discharge dispatch through the HTTP API, unplugs some vehicles mid-window, and saves the
report (JSON, CSV, PNG) in the output directory it names at the end.

Time compression (--speed S): the scenario is a 15-minute dispatch with departures hours
away. It runs on the real clock with every duration divided by S and every battery capacity
divided by S: powers are real, SoC moves as it would uncompressed, and energies that flow
are S times smaller (reports give what actually flowed). Default S = 10: a 90-second window,
about two minutes in all. Ctrl-C cancels the dispatch (DELETE: profiles cleared) and stops
everything cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from v2g_sim.demo_args import build_parser, parse_args
from v2g_sim.demo_ready import FleetNotReady
from v2g_sim.demo_run import DemoResult, DispatchFailed, Interrupted, run_scenario
from v2g_sim.demo_stack import DemoStack, StackSettings, vpp_profiles_left
from v2g_sim.demo_summary import SummaryRow, report_rows
from v2g_sim.demo_view import DemoView
from v2g_sim.scenario import DemoScenario, build_scenario
from vpp_core.dispatch.config import DispatchConfig

__all__ = ["main"]


def _scenario(args: argparse.Namespace, settings: StackSettings) -> DemoScenario:
    return build_scenario(
        settings.station_ids,
        speed=args.speed,
        power_mw=args.power_mw,
        window_scenario_s=args.window_min * 60.0,
        unplug_share=args.unplug_share,
        seed=args.seed,
    )


def _summary(result: DemoResult, scenario: DemoScenario, stack: DemoStack) -> list[SummaryRow]:
    rows = [("dispatch", result.dispatch_id), ("status", result.status)]
    if result.report:
        rows += report_rows(result.report, speed=scenario.speed)
    rows.append(("vehicles unplugged mid-window", ", ".join(result.unplugged) or "none"))
    stack_level = DispatchConfig().stack_level
    left = {
        sid: len(vpp_profiles_left(stack.station_state_dir(sid), stack_level=stack_level))
        for sid in stack.settings.station_ids
    }
    stale = ", ".join(f"{sid} ({n})" for sid, n in left.items() if n)
    rows.append((f"profiles left at stackLevel {stack_level}", stale or "none (all cleared)"))
    trips = ", ".join(
        f"{sid} ({row['events']['COMMS_LOSS_FAILSAFE']})"
        for sid, row in stack.observe().gateways.items()
        if row.get("events", {}).get("COMMS_LOSS_FAILSAFE")
    )
    rows.append(("comms-loss fail-safe trips", trips or "none"))
    return rows


async def _run(args: argparse.Namespace, view: DemoView) -> int:
    settings = StackSettings(
        stations=args.stations, per_host=args.per_host, control_period_s=args.control_period_s
    )
    scenario = _scenario(args, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: the terminal went away
        loop.add_signal_handler(sig, stop.set)
    out_dir = args.output or Path("demo-output") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    temp = None if args.state_dir else Path(tempfile.mkdtemp(prefix="vpp-demo-"))
    state_dir = args.state_dir or temp
    assert state_dir is not None
    view.say(
        f"vpp-demo: {settings.stations} chargers, {scenario.power_mw:.3f} MW discharge for "
        f"{scenario.window_scenario_s / 60:.0f} scenario minutes = {scenario.window_s:.0f} s "
        f"at speed {scenario.speed:g}; state in {state_dir}"
    )
    try:
        async with DemoStack(state_dir, settings) as stack:
            view.say(f"core up (API {stack.api_url}); {len(stack.hosts)} fleet-host process(es)")
            with view:
                result = await run_scenario(
                    stack, scenario, out_dir=out_dir, show=view.show, say=view.say, stop=stop
                )
            view.table(
                "summary (W and Wh signed: negative = out of the EVs)",
                _summary(result, scenario, stack),
            )
    except Interrupted:
        view.say("interrupted before the dispatch: stopped cleanly")
        return 130
    except (DispatchFailed, FleetNotReady) as exc:
        view.say(f"vpp-demo: {exc}")
        return 1
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    view.say(f"report written to {out_dir.resolve()}/ (report.json, report.csv, report.png)")
    if stop.is_set():
        return 130
    return 0 if result.status == "completed" else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(__doc__), argv)  # exit 2 naming the flag and value
    view = DemoView(rich=False if args.plain else None)
    return asyncio.run(_run(args, view))


if __name__ == "__main__":
    raise SystemExit(main())
