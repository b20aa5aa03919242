"""The station with the real control process (its own process, SunSpec over Modbus RTU on a
pty to the simulator) and the simulated module and EV, driven by the raw-websockets CSMS.

- K01/V2X: a CentralSetpoint discharge profile (setpoint -7000 W, stackLevel 50) makes the
  simulated module deliver -7 kW within the ramp time; a stackLevel 60 profile overrides it;
  ClearChargingProfile by criteria returns the EVSE to the stackLevel 50 profile.
- Cut the link mid-discharge: the VPP profile stops applying after maxOfflineDuration, the
  control loop's comms-loss fail-safe opens the contactor (configured 3 s here instead of
  30 s), and after reconnect every queued TransactionEvent arrives once, in order, with
  continuous energy registers, also with a daemon restart (station and control process) in
  the middle of the outage.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.raw_csms import RawCsms
from tests.doubles.station_setup import station_config
from tests.doubles.waiting import eventually
from v2g_gateway.config import ControlProcessConfig, PowerSensorConfig
from v2g_gateway.contactor import ContactorSection
from v2g_gateway.control.channel import ControlChannel
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control_host import ControlProcess
from v2g_gateway.devices import SimulatorSection
from v2g_gateway.hw.config import PowerModuleSection
from v2g_gateway.station import ChargingStation
from v2g_sim.charger import SimEvLink, SimulatedCharger
from v2g_sim.ev import EvSpec
from v2g_sim.runtime import SimulatorOptions, SimulatorRuntime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

RAMP_W_PER_S = 5000.0
COMMS_LOSS_S = 3.0
MAX_OFFLINE_S = 1


@dataclass
class SimStack:
    """The simulator (in this process) and the control process driving it over the pty."""

    charger: SimulatedCharger
    ev_link: SimEvLink
    cfg: ControlProcessConfig
    process: ControlProcess | None = None
    channel: ControlChannel = field(init=False)

    async def start_control(self) -> None:
        self.process = await ControlProcess.start(self.cfg)
        self.channel = ControlChannel(self.process.sock)
        self.channel.attach()
        await self.channel.wait_snapshot(lambda s: s.cycles > 0, timeout_s=30)

    async def stop_control(self) -> None:
        """What stopping the daemon does: ramp to 0 W, open the contactor, exit."""
        if self.process is None:
            return
        self.channel.request_stop()
        try:
            await self.process.stop(timeout_s=10)
        finally:
            self.channel.detach()
            self.process = None


@pytest.fixture
async def sim_stack(tmp_path: Path) -> AsyncIterator[SimStack]:
    socket_path = tmp_path / "sim.sock"
    async with SimulatorRuntime(SimulatorOptions(socket_path=socket_path)) as sim:
        cfg = ControlProcessConfig(
            control=ControlSection(
                period_s=0.05,
                ramp_w_per_s=RAMP_W_PER_S,
                comms_loss_timeout_s=COMMS_LOSS_S,
                rearm_delay_s=0.5,
            ),
            power_module=PowerModuleSection(port=sim.port, parity="N", timeout_s=0.3),
            power_sensor=PowerSensorConfig(
                kind="simulated", calibration_file=tmp_path / "no-calibration.json"
            ),
            contactor=ContactorSection(kind="simulated"),
            simulator=SimulatorSection(socket=socket_path, device_id=1),
        )
        stack = SimStack(sim.chargers[1], SimEvLink(sim.chargers[1]), cfg)
        await stack.start_control()
        try:
            yield stack
        finally:
            await stack.stop_control()


def setpoint_profile(pid: int, stack: int, setpoint_w: float, tx_id: str) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(seconds=2)
    return {
        "id": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": tx_id,
        "validFrom": start.isoformat(),
        "validTo": (start + timedelta(hours=1)).isoformat(),
        "maxOfflineDuration": MAX_OFFLINE_S,
        "chargingSchedule": [
            {
                "id": pid,
                "startSchedule": start.isoformat(),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {
                        "startPeriod": 0,
                        "operationMode": "CentralSetpoint",
                        "setpoint": setpoint_w,
                        "dischargeLimit": -11000.0,
                    }
                ],
            }
        ],
    }


IDLE_DEFAULT = {
    "id": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": [
        {
            "id": 1,
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0.0}],
        }
    ],
}


def near(charger: SimulatedCharger, power_w: float, tolerance_w: float = 150.0) -> bool:
    return abs(charger.model.power_w - power_w) <= tolerance_w


async def plug_in_and_start(csms: RawCsms, stack: SimStack) -> str:
    await csms.wait_for(lambda c: bool(c.calls("StatusNotification")))
    assert (await csms.call("SetChargingProfile", {"evseId": 0, "chargingProfile": IDLE_DEFAULT}))[
        "status"
    ] == "Accepted"
    stack.charger.plug_in(EvSpec(soc_pct=70.0), now=datetime.now(UTC))
    await csms.wait_for(lambda c: bool(c.calls("NotifyEVChargingNeeds")), timeout_s=15)
    return str(csms.calls("TransactionEvent")[0]["transactionInfo"]["transactionId"])


async def set_profile(csms: RawCsms, profile: dict[str, Any]) -> None:
    answer = await csms.call("SetChargingProfile", {"evseId": 1, "chargingProfile": profile})
    assert answer["status"] == "Accepted", answer


async def test_discharge_profile_drives_the_simulated_module(
    csms: RawCsms, sim_stack: SimStack, tmp_path: Path
) -> None:
    charger = sim_stack.charger
    config = station_config(csms.url, tmp_path / "state")
    async with ChargingStation(config, control=sim_stack.channel, ev_link=sim_stack.ev_link):
        tx_id = await plug_in_and_start(csms, sim_stack)
        ramp_time_s = 7000.0 / RAMP_W_PER_S
        await set_profile(csms, setpoint_profile(50, 50, -7000.0, tx_id))
        # The control loop commands -7 kW within the ramp time (+ a tick and a lease hop)...
        channel = sim_stack.channel
        await channel.wait_snapshot(lambda s: s.commanded_w <= -6999.0, timeout_s=ramp_time_s + 1)
        # ...and the module follows with its own lag (first order, tau 0.8 s: ~3 tau).
        await eventually(lambda: near(charger, -7000.0), timeout_s=ramp_time_s + 3.5)

        await set_profile(csms, setpoint_profile(60, 60, -3000.0, tx_id))
        await eventually(lambda: near(charger, -3000.0), timeout_s=4000 / RAMP_W_PER_S + 3.5)

        cleared = await csms.call(
            "ClearChargingProfile",
            {
                "chargingProfileCriteria": {
                    "evseId": 1,
                    "chargingProfilePurpose": "TxProfile",
                    "stackLevel": 60,
                }
            },
        )
        assert cleared["status"] == "Accepted"
        await eventually(lambda: near(charger, -7000.0), timeout_s=4000 / RAMP_W_PER_S + 3.5)
        await csms.wait_for(
            lambda c: any(
                s["measurand"] == "Power.Active.Import" and s["value"] < -6500
                for e in c.calls("TransactionEvent")
                for s in e["meterValue"][0]["sampledValue"]
            )
        )
    assert csms.violations == []


def registers(event: dict[str, Any]) -> tuple[float, float]:
    values = {s["measurand"]: s["value"] for s in event["meterValue"][0]["sampledValue"]}
    return values["Energy.Active.Import.Register"], values["Energy.Active.Export.Register"]


async def test_cut_link_mid_discharge_real_control(
    csms: RawCsms, sim_stack: SimStack, tmp_path: Path
) -> None:
    charger, channel = sim_stack.charger, sim_stack.channel
    config = station_config(csms.url, tmp_path / "state")
    async with ChargingStation(config, control=channel, ev_link=sim_stack.ev_link):
        tx_id = await plug_in_and_start(csms, sim_stack)
        await set_profile(csms, setpoint_profile(50, 50, -7000.0, tx_id))
        await eventually(lambda: near(charger, -7000.0), timeout_s=7000 / RAMP_W_PER_S + 3.5)
        online_events = len(csms.calls("TransactionEvent"))
        csms.refuse = True
        csms.cut()
        cut_s = time.monotonic()
        # The VPP profile stops applying after maxOfflineDuration: the lower profile (0 W).
        await channel.wait_snapshot(lambda s: s.lease_power_w == 0.0, timeout_s=MAX_OFFLINE_S + 1.5)
        await channel.wait_snapshot(lambda s: s.fail_safe, timeout_s=COMMS_LOSS_S + 2)
        # Not early: the last contact was at most one contact-probe interval before the cut.
        assert time.monotonic() - cut_s >= COMMS_LOSS_S - config.contact_probe_interval_s - 0.2
        contactor_opened = await holds_within(lambda: not charger.model.contactor_closed, 5.0)
    # The whole daemon restarts in the middle of the outage: station and control process.
    await sim_stack.stop_control()
    await sim_stack.start_control()
    channel = sim_stack.channel
    async with ChargingStation(config, control=channel, ev_link=sim_stack.ev_link):
        # A lease from the restarted station has arrived: it must not bring the -7 kW back.
        await channel.wait_snapshot(
            lambda s: s.lease_remaining_s > 0 and s.cycles > 20, timeout_s=5
        )
        assert channel.snapshot().lease_power_w == 0.0, "no -7 kW after the restart"
        assert near(charger, 0.0)
        csms.refuse = False
        await csms.wait_for(lambda c: c.connections >= 2, timeout_s=10)
        await csms.wait_for(
            lambda c: any(e.get("offline") for e in c.calls("TransactionEvent")), timeout_s=10
        )
        charger.plug_out()
        await csms.wait_for(
            lambda c: c.calls("TransactionEvent")[-1]["eventType"] == "Ended", timeout_s=10
        )
    events, resends = csms.delivered_transaction_events()
    assert resends <= 1, "at most the event in flight at the cut is sent twice"
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
    assert any(e.get("offline") for e in events[online_events:])
    imports, exports = zip(*(registers(e) for e in events), strict=True)
    assert list(imports) == sorted(imports)
    assert list(exports) == sorted(exports)
    assert exports[-1] > exports[0], "the discharge shows in the export register"
    assert csms.violations == []
    # Checked last so that everything above is verified even while this part fails.
    assert contactor_opened, "the comms-loss fail-safe opened the simulated contactor"


async def holds_within(predicate: Callable[[], bool], timeout_s: float) -> bool:
    try:
        await eventually(predicate, timeout_s=timeout_s)
    except TimeoutError:
        return False
    return True
