"""Connecting: security profile 2 (TLS + Basic auth) and 3 (mutual TLS, CN = identity)
with the PKI tool's certificates (A00 security), the ocpp2.0.1 fallback, and B01/B02/B03
BootNotification Accepted/Pending/Rejected with its interval."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TestPki
from tests.doubles.raw_csms import DEFAULT_ANSWERS, RawCsms
from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from tests.doubles.station_setup import PASSWORD, station_config
from tests.doubles.waiting import eventually
from v2g_common.pki import server_context
from v2g_gateway.station import ChargingStation

pytestmark = pytest.mark.integration


async def test_security_profile_2(pki: TestPki, tmp_path: Path) -> None:
    cert, key = pki.server("csms")
    async with RawCsms(
        ssl_context=server_context(cert, key), passwords={"CS-0001": PASSWORD}
    ) as csms:
        config = station_config(csms.url, tmp_path, security_profile=2, ca_cert=pki.ca)
        async with ChargingStation(config, control=ScriptedControl()):
            await csms.wait_for(lambda c: bool(c.calls("StatusNotification")))
        wrong = station_config(
            csms.url,
            tmp_path / "b",
            security_profile=2,
            ca_cert=pki.ca,
            password="not-the-password-0001",
        )
        attempts = csms.attempts
        async with ChargingStation(wrong, control=ScriptedControl()):
            await eventually(lambda: csms.attempts >= attempts + 3)
        assert csms.connections == 1, "a wrong password is refused at the handshake"
    assert csms.violations == []


async def test_security_profile_3(pki: TestPki, tmp_path: Path) -> None:
    cert, key = pki.server("csms")
    context = server_context(cert, key, client_ca=pki.ca, require_client_cert=True)
    async with RawCsms(ssl_context=context) as csms:
        csms.require_client_cn = True
        client_cert, client_key = pki.client("CS-0001")
        config = station_config(
            csms.url,
            tmp_path,
            security_profile=3,
            password=None,
            ca_cert=pki.ca,
            client_cert=client_cert,
            client_key=client_key,
        )
        async with ChargingStation(config, control=ScriptedControl()):
            await csms.wait_for(lambda c: bool(c.calls("StatusNotification")))
    assert csms.identities == ["CS-0001"]
    assert csms.violations == []


async def test_falls_back_to_ocpp201(csms_201: RawCsms, tmp_path: Path) -> None:
    control = ScriptedControl()
    config = station_config(csms_201.url, tmp_path, subprotocols=("ocpp2.1", "ocpp2.0.1"))
    async with ChargingStation(config, control=control, ev_link=ScriptedEvLink(control)):
        await csms_201.wait_for(lambda c: bool(c.calls("StatusNotification")))
        assert csms_201.subprotocol == "ocpp2.0.1"
        control.plug_in()
        await csms_201.wait_for(lambda c: bool(c.calls("NotifyEVChargingNeeds")))
        profile = {
            "id": 3,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": [
                {
                    "id": 3,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}],
                }
            ],
        }
        answer = await csms_201.call(
            "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}
        )
        assert answer["status"] == "Accepted"
        await eventually(lambda: control.leases[-1].power_w == pytest.approx(10 * 230 * 3))
        composite = await csms_201.call(
            "GetCompositeSchedule", {"duration": 60, "evseId": 1, "chargingRateUnit": "A"}
        )
        assert composite["schedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 10.0}
        ]
        control.unplug()
        await csms_201.wait_for(lambda c: c.calls("TransactionEvent")[-1]["eventType"] == "Ended")
    assert csms_201.violations == []


@pytest.fixture
async def csms_201() -> Any:
    async with RawCsms(passwords={"CS-0001": PASSWORD}, subprotocols=("ocpp2.0.1",)) as server:
        yield server


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
async def test_boot_not_accepted_waits_interval(csms: RawCsms, tmp_path: Path, status: str) -> None:
    boots: list[float] = []

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        boots.append(time.monotonic())
        accepted = DEFAULT_ANSWERS["BootNotification"](payload)
        assert isinstance(accepted, dict)
        return {**accepted, "status": status, "interval": 1} if len(boots) < 3 else accepted

    csms.answer("BootNotification", answer)
    control = ScriptedControl()
    async with ChargingStation(station_config(csms.url, tmp_path), control=control):
        await csms.wait_for(lambda c: bool(c.calls("StatusNotification")))
        contacts_when_accepted = control.contacts
    sent = [f.action for f in csms.frames if f.direction == "in" and f.kind == 2]
    assert sent[:3] == ["BootNotification"] * 3, "nothing else before Accepted"
    assert boots[1] - boots[0] >= 0.9
    assert boots[2] - boots[1] >= 0.9
    # Pending is contact with a CSMS; Rejected is not (the fail-safe clock keeps running).
    expected = 3 if status == "Pending" else 1
    assert contacts_when_accepted >= expected
    if status == "Rejected":
        assert contacts_when_accepted < 3
    assert csms.violations == []


async def test_idle_link_sends_heartbeats_that_count_as_contact(
    csms: RawCsms, tmp_path: Path
) -> None:
    """With nothing else to send, a Heartbeat goes out every contact-probe interval (here 1 s,
    shorter than the CSMS's 300 s), each answer reported to the control loop as contact."""
    control = ScriptedControl()
    async with ChargingStation(station_config(csms.url, tmp_path), control=control):
        await csms.wait_for(lambda c: len(c.calls("Heartbeat")) >= 2, timeout_s=5)
        contacts = control.contacts
        await csms.wait_for(lambda c: len(c.calls("Heartbeat")) >= 3, timeout_s=3)
        await eventually(lambda: control.contacts > contacts)
    assert csms.violations == []
