"""A simulator on a real pty pair and drivers connected to it (fast baud, short timeouts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from v2g_gateway.hw.config import PowerModuleSection
from v2g_gateway.hw.power_module import SunSpecPowerModule, open_power_module
from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime

BAUD = 115200


@pytest.fixture
async def sim_line() -> AsyncIterator[SimulatorRuntime]:
    """One simulated charger with an EV plugged in; the sim clock only moves when the test
    steps it (``time_scale=0``), so readings are exact."""
    options = SimulatorOptions(baudrate=BAUD, time_scale=0.0, plug_in=True)
    async with SimulatorRuntime(options) as sim:
        yield sim


class DriverFactory:
    """``connect(port, **section_overrides)`` -> driver, built as the daemon's wiring does."""

    def __init__(self) -> None:
        self.clients: list[Any] = []

    def __call__(self, port: str, **overrides: Any) -> SunSpecPowerModule:
        settings: dict[str, Any] = {
            "port": port,
            "baudrate": BAUD,
            "parity": "N",  # Linux ptys reject PARENB; real RS-485 keeps the default "E"
            "timeout_s": 0.15,
            "retries": 1,
            "reconnect_delay_s": 0.1,
        }
        settings.update(overrides)
        module, client = open_power_module(PowerModuleSection(**settings))
        self.clients.append(client)
        return module

    def close_all(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


@pytest.fixture
async def connect() -> AsyncIterator[DriverFactory]:
    factory = DriverFactory()
    yield factory
    factory.close_all()
