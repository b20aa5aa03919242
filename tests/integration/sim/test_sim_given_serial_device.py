"""``v2g-sim`` serving on a given serial device (here one end of the shared null-modem pair),
with several modules on one line, as an RS-485 bus would be."""

from __future__ import annotations

from typing import Any

import pytest

from v2g_gateway.hw.config import PowerModuleSection
from v2g_gateway.hw.power_module import FrameMonitor, RegisterLink, SunSpecPowerModule
from v2g_gateway.hw.power_module.client import open_serial_client
from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime

pytestmark = pytest.mark.integration


async def test_serves_three_modules_on_a_given_device(null_modem: Any) -> None:
    options = SimulatorOptions(
        chargers=3,
        first_device_id=10,
        port=null_modem.port_a,
        parity="N",
        baudrate=115200,
        time_scale=0.0,
        plug_in=True,
    )
    async with SimulatorRuntime(options) as sim:
        assert sim.link is None  # no pty of its own
        section = PowerModuleSection(
            port=null_modem.port_b, parity="N", baudrate=115200, timeout_s=0.2
        )
        monitor = FrameMonitor()
        client = open_serial_client(section, monitor)  # one owner of the bus...
        try:
            modules = {  # ...shared by the drivers of each device id on it
                d: SunSpecPowerModule(
                    RegisterLink(client, device_id=d, timeout_s=0.2, retries=1, monitor=monitor)
                )
                for d in (10, 11, 12)
            }
            for device_id, module in modules.items():
                await module.write_setpoint(-1000.0 * device_id)
            for device_id, model in ((d, sim.chargers[d].model) for d in modules):
                assert model.setpoint_w == -1000.0 * device_id
            sim.chargers[11].model.inject_fault("over_temp")
            faults = {d: (await m.read_measurement()).faults for d, m in modules.items()}
            assert faults == {10: frozenset(), 11: frozenset({"OVER_TEMP"}), 12: frozenset()}
        finally:
            client.close()
