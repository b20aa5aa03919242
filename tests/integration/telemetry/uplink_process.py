"""Run one site uplink as its own process until killed: the "gateway daemon" of the
crash-restart test. ``python -m tests.integration.telemetry.uplink_process '<UplinkConfig
JSON>'``; prints ``ready`` once the outbox is open."""

from __future__ import annotations

import asyncio
import sys

from tests.integration.telemetry.harness import SettableCharger, charger_state
from v2g_gateway.uplink import SiteUplink, UplinkConfig


async def run(config: UplinkConfig) -> None:
    async with SiteUplink(config, {"cp-1": SettableCharger(charger_state("cp-1"))}):
        print("ready", flush=True)
        await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(run(UplinkConfig.model_validate_json(sys.argv[1])))
