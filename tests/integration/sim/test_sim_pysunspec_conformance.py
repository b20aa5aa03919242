"""pysunspec2, an independent SunSpec client, scans the simulator's map over a real tty."""

from __future__ import annotations

import asyncio

import pytest
import sunspec2.modbus.client as sunspec_client

from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime

pytestmark = pytest.mark.integration


def _scan(port: str) -> dict[str, object]:
    device = sunspec_client.SunSpecModbusClientDeviceRTU(
        slave_id=1,
        name=port,
        baudrate=115200,
        parity=sunspec_client.modbus_client.PARITY_NONE,
        timeout=1,
    )
    try:
        device.scan()
        found = {str(k): v for k, v in device.models.items() if isinstance(k, int)}
        m701, m702, m704, m713 = (device.models[i][0] for i in (701, 702, 704, 713))
        for model in (m701, m702, m704, m713):
            model.read()
        return {
            "ids": sorted(int(k) for k in found),
            "W": m701.W.cvalue,
            "Hz": m701.Hz.cvalue,
            "TotWhInj": m701.TotWhInj.cvalue,
            "WMaxRtg": m702.WMaxRtg.cvalue,
            "WSet": m704.WSet.cvalue,
            "SoC": m713.SoC.cvalue,
            "Mn": device.models[1][0].Mn.cvalue,
        }
    finally:
        device.close()


async def test_pysunspec2_scans_the_simulator_and_finds_the_models() -> None:
    options = SimulatorOptions(baudrate=115200, time_scale=0.0, plug_in=True)
    async with SimulatorRuntime(options) as sim:
        model = sim.chargers[1].model
        model.command_setpoint(-7000.0)
        model.step(20.0)
        found = await asyncio.to_thread(_scan, sim.port)
    assert found["ids"] == [1, 701, 702, 703, 704, 713]
    assert found["Mn"] == "V2G-SIM"
    assert found["W"] == pytest.approx(7000.0, abs=1.0)  # SunSpec sign: injection positive
    assert found["Hz"] == pytest.approx(50.0, abs=0.2)
    assert found["TotWhInj"] == pytest.approx(model.energy_injected_wh, abs=0.1)
    assert found["WMaxRtg"] == 11000
    assert found["SoC"] == pytest.approx(model.soc_pct, abs=0.05)
