"""The control socket: request dispatch, the JSON-lines server and its blocking client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from v2g_gateway.hw.power_sensor import Ina228
from v2g_sim.charger import SimEvLink, SimulatedCharger
from v2g_sim.control import (
    ControlError,
    ControlServer,
    RemoteEvLink,
    RemoteI2cBus,
    SimControlClient,
    handle_request,
)


def _chargers() -> dict[int, SimulatedCharger]:
    return {i: SimulatedCharger.create(i, seed=i) for i in (1, 2)}


def test_plug_in_fault_clear_plug_out() -> None:
    chargers = _chargers()
    resp = handle_request(chargers, {"cmd": "plug-in", "device_id": 2, "ev": {"soc_pct": 70}})
    assert resp["ok"]
    assert resp["ev_connected"]
    assert resp["soc_pct"] == 70
    assert chargers[1].model.ev is None
    resp = handle_request(chargers, {"cmd": "fault", "device_id": 2, "kind": "over_temp"})
    assert resp["faults"] == ["over_temp"]
    resp = handle_request(chargers, {"cmd": "clear", "device_id": 2})
    assert resp["faults"] == []
    resp = handle_request(chargers, {"cmd": "plug-out", "device_id": 2})
    assert not resp["ev_connected"]


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"cmd": "warp"}, "unknown command"),
        ({"cmd": "fault", "kind": "meteor"}, "unknown fault"),
        ({"cmd": "status", "device_id": 9}, "no simulated charger"),
        ({"cmd": "plug-in", "ev": {"colour": "red"}}, "unknown EV fields"),
    ],
)
def test_bad_requests_get_clear_errors(request_: dict[str, object], error: str) -> None:
    resp = handle_request(_chargers(), request_)
    assert not resp["ok"]
    assert error in str(resp["error"])


def test_contactor_command_opens_and_closes_the_output() -> None:
    chargers = _chargers()
    handle_request(chargers, {"cmd": "plug-in", "device_id": 1})
    handle_request(chargers, {"cmd": "drive", "device_id": 1, "power_w": -3000, "settle": True})
    resp = handle_request(chargers, {"cmd": "contactor", "device_id": 1, "closed": False})
    assert resp["contactor_closed"] is False
    assert resp["power_w"] == 0.0
    resp = handle_request(chargers, {"cmd": "contactor", "device_id": 1, "closed": "yes"})
    assert not resp["ok"]
    resp = handle_request(chargers, {"cmd": "contactor", "device_id": 1, "closed": True})
    assert resp["contactor_closed"] is True


def test_drive_with_settle_reaches_the_setpoint() -> None:
    chargers = _chargers()
    handle_request(chargers, {"cmd": "plug-in", "device_id": 1})
    resp = handle_request(
        chargers, {"cmd": "drive", "device_id": 1, "power_w": -4000, "settle": True}
    )
    assert resp["power_w"] == pytest.approx(-4000.0, abs=0.05)


async def test_socket_round_trip_and_remote_i2c_bus(tmp_path: Path) -> None:
    chargers = _chargers()
    handle_request(chargers, {"cmd": "plug-in", "device_id": 2})
    chargers[2].model.power_w = -2500.0
    path = tmp_path / "sim.sock"
    async with ControlServer(path, chargers):

        def technician() -> tuple[dict[str, object], float]:
            with SimControlClient(path) as client:
                status = client.request("status", device_id=2)
                sensor = Ina228(
                    RemoteI2cBus(client, device_id=2),
                    shunt_ohm=0.001,
                    max_current_a=40.0,
                    voltage_scale=10.0,
                )
                sensor.initialize()
                with pytest.raises(ControlError, match="unknown command"):
                    client.request("warp")
                return status, sensor.read_power_w()

        status, power_w = await asyncio.to_thread(technician)
    assert status["device_id"] == 2
    assert power_w == pytest.approx(-2500.0, abs=0.05)
    assert not path.exists()


def test_client_reports_absent_simulator(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="cannot reach"):
        SimControlClient(tmp_path / "none.sock")


async def test_remote_ev_link_reports_needs_across_processes(tmp_path: Path) -> None:
    chargers = _chargers()
    path = tmp_path / "sim.sock"
    async with ControlServer(path, chargers):
        link = RemoteEvLink(path, device_id=2)
        assert await link.read_charging_needs() is None
        handle_request(
            chargers,
            {
                "cmd": "plug-in",
                "device_id": 2,
                "ev": {"soc_pct": 40, "target_soc_pct": 80, "ev_id": "EV-X"},
            },
        )
        needs = await link.read_charging_needs()
        assert needs == await SimEvLink(chargers[2]).read_charging_needs()
        assert needs is not None
        assert needs.ev_id == "EV-X"
        assert needs.departure is not None
        with pytest.raises(ControlError, match="no simulated charger"):
            await RemoteEvLink(path, device_id=9).read_charging_needs()
    with pytest.raises(ControlError, match="cannot reach"):
        await RemoteEvLink(path, device_id=2, timeout_s=0.5).read_charging_needs()
