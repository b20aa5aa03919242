"""Waiting on the fleet as its gateways report it (status files of the fleet hosts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from v2g_sim.demo_stack import DemoStack, FleetObservation

POLL_S = 0.25


async def wait_fleet(
    stack: DemoStack, predicate: Callable[[FleetObservation], bool], *, timeout_s: float
) -> FleetObservation:
    """The first observation satisfying ``predicate``; TimeoutError with the last one."""
    last = stack.observe()
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate(last):
                await asyncio.sleep(POLL_S)
                last = stack.observe()
    except TimeoutError:
        raise AssertionError(f"fleet never got there in {timeout_s} s; last: {last}") from None
    return last


def discharging(obs: FleetObservation, *, below_w: float = -100.0) -> set[str]:
    """Stations whose measured power is below ``below_w`` (discharging)."""
    return {sid for sid, r in obs.gateways.items() if r.get("power_w", 0.0) < below_w}


def failsafe_events(obs: FleetObservation) -> dict[str, int]:
    """Comms-loss fail-safe entries per station, counted by the gateways' control loops."""
    return {
        sid: r["events"]["COMMS_LOSS_FAILSAFE"]
        for sid, r in obs.gateways.items()
        if r.get("events", {}).get("COMMS_LOSS_FAILSAFE")
    }
