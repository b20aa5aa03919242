"""Our station managed by a CSMS that is not ours: the ``ocpp`` library's own v2.1 / v2.0.1
``ChargePoint`` in the CSMS role (tests/doubles/foreign_csms.py), every frame both ways
checked against the OCA schemas with ``jsonschema``.

Covers F06 TriggerMessage (TC_F_11..F_27), B06/B05/B07 Get/SetVariables and GetBaseReport
(TC_B_06..B_14), G03/G04 ChangeAvailability (TC_G_03..G_17), F01-F03 RequestStart/Stop
Transaction (TC_F_01..F_04, TC_E_21, TC_K_37), B11/B12 Reset (TC_B_20..B_27), A02/A03
certificate renewal over security profile 3 (TC_A_11, TC_A_14), and the
composite-schedule / TransactionEvent reporting fixes (K08, Q: legacy negative limit, local
limits, NotifyAllowedEnergyTransfer without BPT). The answer to each command precedes what it
triggers on the wire (checked on the recorded frames).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ocpp.exceptions import OccurrenceConstraintViolationError
from ocpp.v21 import call as call21
from ocpp.v201 import call as call201

from tests.conftest import TestPki
from tests.doubles.foreign_csms import ForeignCsms
from tests.doubles.oca_schemas import ValidatingConnection
from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from tests.doubles.station_setup import PASSWORD, station_config
from tests.doubles.variables import ref
from tests.doubles.waiting import eventually
from v2g_common.pki import CertificateAuthority, IssuedCertificate, server_context
from v2g_gateway.station import ChargingStation, certificates
from v2g_gateway.station.certificates import CertificateRenewal
from v2g_gateway.station.settings import StationSettings

pytestmark = pytest.mark.integration

VERSIONS = {"ocpp2.1": call21, "ocpp2.0.1": call201}


class Bench:
    """A station on scripted hardware, connected to a foreign CSMS."""

    def __init__(self, csms: ForeignCsms, station: ChargingStation, control: ScriptedControl):
        self.csms = csms
        self.station = station
        self.control = control

    @property
    def wire(self) -> ValidatingConnection:
        return self.csms.connection

    def events(self) -> list[dict[str, Any]]:
        return self.csms.calls("TransactionEvent")

    def answered_before(self, command: str, triggered: str) -> bool:
        """The station's answer to the last ``command`` precedes the first ``triggered`` CALL
        that follows the command."""
        frames = self.wire.frames
        sent = max(i for i, f in enumerate(frames) if f.direction == "out" and f.action == command)
        message_id = frames[sent].message[1]
        answer = next(
            i
            for i, f in enumerate(frames)
            if i > sent and f.direction == "in" and f.message[1] == message_id
        )
        first = next(
            i
            for i, f in enumerate(frames)
            if i > sent and f.direction == "in" and f.action == triggered
        )
        return answer < first

    async def wait_calls(self, action: str, count: int, timeout_s: float = 30.0) -> list[Any]:
        await self.csms.wait_for(lambda: len(self.csms.calls(action)) >= count, timeout_s=timeout_s)
        return self.csms.calls(action)


@asynccontextmanager
async def bench(
    tmp_path: Path,
    subprotocol: str = "ocpp2.1",
    *,
    tls: ssl.SSLContext | None = None,
    **overrides: Any,
) -> AsyncIterator[Bench]:
    """Security profile 1 (Basic auth), or with ``tls`` (a server context requiring client
    certificates) a station on profile 3 whose ``overrides`` name its certificate."""
    control = ScriptedControl()
    passwords = None if tls else {"CS-0001": PASSWORD}
    async with ForeignCsms(
        subprotocols=(subprotocol,), passwords=passwords, ssl_context=tls, accept_signing=True
    ) as csms:
        config = station_config(
            csms.url,
            tmp_path,
            subprotocols=("ocpp2.1", "ocpp2.0.1"),
            contact_probe_interval_s=60.0,  # no probe heartbeats: only triggered ones
            sampled_data_interval_s=3600.0,  # no periodic events between a command and its effect
            **overrides,
        )
        async with ChargingStation(config, control=control, ev_link=ScriptedEvLink(control)) as cs:
            b = Bench(csms, cs, control)
            await b.wait_calls("StatusNotification", 1)
            yield b
        assert csms.violations == []


@pytest.mark.parametrize("subprotocol", ["ocpp2.1", "ocpp2.0.1"])
async def test_trigger_message(tmp_path: Path, subprotocol: str) -> None:
    call = VERSIONS[subprotocol]
    async with bench(tmp_path, subprotocol) as b:
        trigger = call.TriggerMessage
        assert (
            await b.csms.call(trigger(requested_message="BootNotification"))
        ).status == "Rejected"
        for message, action in [
            ("Heartbeat", "Heartbeat"),
            ("LogStatusNotification", "LogStatusNotification"),
            ("FirmwareStatusNotification", "FirmwareStatusNotification"),
        ]:
            assert (await b.csms.call(trigger(requested_message=message))).status == "Accepted"
            await b.wait_calls(action, 1)
            assert b.answered_before("TriggerMessage", action)
        assert b.csms.calls("LogStatusNotification")[-1]["status"] == "Idle"
        evse = {"id": 1, "connector_id": 1}
        answer = await b.csms.call(trigger(requested_message="StatusNotification", evse=evse))
        assert answer.status == "Accepted"
        statuses = await b.wait_calls("StatusNotification", 2)
        assert b.answered_before("TriggerMessage", "StatusNotification")
        assert statuses[-1]["connectorStatus"] == "Available"
        answer = await b.csms.call(trigger(requested_message="MeterValues", evse={"id": 1}))
        assert answer.status == "Accepted"
        [meter] = await b.wait_calls("MeterValues", 1)
        assert meter["evseId"] == 1
        assert {s["context"] for s in meter["meterValue"][0]["sampledValue"]} == {"Trigger"}
        # No transaction yet: nothing to report.
        answer = await b.csms.call(trigger(requested_message="TransactionEvent"))
        assert answer.status == "Rejected"
        b.control.plug_in()
        await b.wait_calls("TransactionEvent", 1)
        answer = await b.csms.call(trigger(requested_message="TransactionEvent", evse={"id": 1}))
        assert answer.status == "Accepted"
        await b.csms.wait_for(lambda: b.events()[-1]["triggerReason"] == "Trigger")
        assert b.answered_before("TriggerMessage", "TransactionEvent")
        triggered = b.events()[-1]
        assert triggered["eventType"] == "Updated"
        assert triggered["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
        assert (await b.csms.call(trigger(requested_message="SignV2GCertificate"))).status == (
            "NotImplemented"
        )
        # A station on security profile 1 has no client certificate to renew.
        answer = await b.csms.call(trigger(requested_message="SignChargingStationCertificate"))
        assert answer.status == "Rejected"
        assert b.csms.calls("SignCertificate") == []


@pytest.mark.parametrize("subprotocol", ["ocpp2.1", "ocpp2.0.1"])
async def test_device_model(tmp_path: Path, subprotocol: str) -> None:
    call = VERSIONS[subprotocol]
    async with bench(tmp_path, subprotocol) as b:
        answer = await b.csms.call(
            call.GetVariables(
                get_variable_data=[
                    ref("OCPPCommCtrlr", "HeartbeatInterval"),
                    ref("V2XChargingCtrlr", "SupportedOperationModes", evse=1),
                    ref("EVSE", "Power", evse=1),
                    ref("NoSuchCtrlr", "Enabled"),
                    ref("SampledDataCtrlr", "NoSuchVariable"),
                ]
            )
        )
        got = [
            (r["attribute_status"], r.get("attribute_value")) for r in answer.get_variable_result
        ]
        assert got == [
            ("Accepted", "300"),
            ("Accepted", "Idle,ChargingOnly,CentralSetpoint,LocalFrequency,CentralFrequency"),
            ("Accepted", "22000"),
            ("UnknownComponent", None),
            ("UnknownVariable", None),
        ]
        answer = await b.csms.call(
            call.SetVariables(
                set_variable_data=[
                    {**ref("SampledDataCtrlr", "TxUpdatedInterval"), "attribute_value": "1"},
                    {**ref("SampledDataCtrlr", "TxUpdatedInterval"), "attribute_value": "-1"},
                    {**ref("SecurityCtrlr", "Identity"), "attribute_value": "CS-9"},
                ]
            )
        )
        assert [r["attribute_status"] for r in answer.set_variable_result] == [
            "Accepted",
            "Rejected",
            "Rejected",
        ]
        assert b.station.settings.sampled_data_interval_s == 1.0
        too_many = [ref("OCPPCommCtrlr", "HeartbeatInterval")] * 51
        with pytest.raises(OccurrenceConstraintViolationError):
            await b.csms.call(call.GetVariables(get_variable_data=too_many))
        for base, request_id in (("FullInventory", 7), ("ConfigurationInventory", 8)):
            answer = await b.csms.call(call.GetBaseReport(request_id=request_id, report_base=base))
            assert answer.status == "Accepted"
            await b.csms.wait_for(
                lambda rid=request_id: any(
                    r["requestId"] == rid and not r.get("tbc", False)
                    for r in b.csms.calls("NotifyReport")
                )
            )
            assert b.answered_before("GetBaseReport", "NotifyReport")
        full = [r for r in b.csms.calls("NotifyReport") if r["requestId"] == 7]
        assert [r["seqNo"] for r in full] == list(range(len(full)))
        assert len(full) >= 2
        assert [r.get("tbc", False) for r in full][-1] is False
        reported = {
            (d["component"]["name"], d["variable"]["name"]): d["variableAttribute"][0]
            for r in full
            for d in r["reportData"]
        }
        assert reported[("SampledDataCtrlr", "TxUpdatedInterval")]["value"] == "1"
        assert (
            reported[("V2XChargingCtrlr", "SupportedEnergyTransferModes")]["value"] == "DC,DC_BPT"
        )
        config = [
            d for r in b.csms.calls("NotifyReport") if r["requestId"] == 8 for d in r["reportData"]
        ]
        assert {d["variableAttribute"][0]["mutability"] for d in config} == {"ReadWrite"}
    # Written values outlive the station: a new process reads 1 s back.
    async with bench(tmp_path, subprotocol) as b:
        [result] = (
            await b.csms.call(
                call.GetVariables(get_variable_data=[ref("SampledDataCtrlr", "TxUpdatedInterval")])
            )
        ).get_variable_result
        assert result["attribute_value"] == "1"


async def test_availability_and_remote_start_stop(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        csms, control = b.csms, b.control
        statuses = lambda: [s["connectorStatus"] for s in csms.calls("StatusNotification")]  # noqa: E731
        answer = await csms.call(
            call21.ChangeAvailability(operational_status="Inoperative", evse={"id": 1})
        )
        assert answer.status == "Accepted"
        await csms.wait_for(lambda: statuses()[-1] == "Unavailable")
        assert b.answered_before("ChangeAvailability", "StatusNotification")
        control.plug_in()
        leases = len(control.leases)
        await eventually(lambda: len(control.leases) > leases + 10)
        assert b.events() == []  # no transaction on an inoperative EVSE
        assert {lease.power_w for lease in control.leases[leases:]} == {0.0}
        await csms.call(call21.ChangeAvailability(operational_status="Operative", evse={"id": 1}))
        await csms.wait_for(lambda: bool(b.events()))
        tx_id = b.events()[0]["transactionInfo"]["transactionId"]
        assert statuses()[-1] == "Occupied"
        # Remote start on a running transaction authorizes it.
        token = {"id_token": "TAG-0001", "type": "ISO14443"}
        answer = await csms.call(
            call21.RequestStartTransaction(id_token=token, remote_start_id=11, evse_id=1)
        )
        assert (answer.status, answer.transaction_id) == ("Accepted", tx_id)
        status = await csms.call(call21.GetTransactionStatus(transaction_id=tx_id))
        assert status.ongoing_indicator is True
        await csms.wait_for(lambda: b.events()[-1]["triggerReason"] == "RemoteStart")
        authorized = b.events()[-1]
        assert authorized["idToken"] == {"idToken": "TAG-0001", "type": "ISO14443"}
        assert authorized["transactionInfo"]["remoteStartId"] == 11
        assert b.answered_before("RequestStartTransaction", "TransactionEvent")
        # Inoperative while charging: only after the transaction.
        answer = await csms.call(call21.ChangeAvailability(operational_status="Inoperative"))
        assert answer.status == "Scheduled"
        answer = await csms.call(call21.RequestStopTransaction(transaction_id=tx_id))
        assert answer.status == "Accepted"
        await csms.wait_for(lambda: b.events()[-1]["eventType"] == "Ended")
        ended = b.events()[-1]
        assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
            "RemoteStop",
            "Remote",
        )
        await csms.wait_for(lambda: statuses()[-1] == "Unavailable")
        unknown = await csms.call(call21.RequestStopTransaction(transaction_id=tx_id))
        assert unknown.status == "Rejected"
        status = await csms.call(call21.GetTransactionStatus(transaction_id=tx_id))
        assert (status.ongoing_indicator, status.messages_in_queue) == (False, False)
        await csms.call(call21.ChangeAvailability(operational_status="Operative"))
        await csms.wait_for(lambda: statuses()[-1] == "Occupied")
        leases = len(control.leases)
        await eventually(lambda: len(control.leases) > leases + 10)
        assert b.events()[-1] is ended  # still plugged in: no new transaction, no energy
        assert {lease.power_w for lease in control.leases[leases:]} == {0.0}
        control.unplug()
        await csms.wait_for(lambda: statuses()[-1] == "Available")
        # Remote start first, with a charging profile for the transaction it starts.
        profile = {
            "id": 77,
            "stack_level": 5,
            "charging_profile_purpose": "TxProfile",
            "charging_profile_kind": "Relative",
            "charging_schedule": [
                {
                    "id": 77,
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [{"start_period": 0, "limit": 5000.0}],
                }
            ],
        }
        answer = await csms.call(
            call21.RequestStartTransaction(
                id_token=token, remote_start_id=12, evse_id=1, charging_profile=profile
            )
        )
        assert (answer.status, answer.transaction_id) == ("Accepted", None)
        control.plug_in()
        await csms.wait_for(lambda: b.events()[-1]["eventType"] == "Started")
        started = b.events()[-1]
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 12
        assert started["idToken"]["idToken"] == "TAG-0001"
        await eventually(lambda: control.leases[-1].power_w == 5000.0)


async def test_reset_on_idle_and_immediate(tmp_path: Path) -> None:
    async with bench(tmp_path, reset_ramp_timeout_s=5.0) as b:
        csms, control = b.csms, b.control
        control.plug_in()
        await csms.wait_for(lambda: bool(b.events()))
        assert (await csms.call(call21.Reset(type="OnIdle"))).status == "Scheduled"
        assert (await csms.call(call21.Reset(type="ImmediateAndResume"))).status == "Rejected"
        control.unplug()
        await csms.wait_for(lambda: len(csms.connections) == 2, timeout_s=15)
        boots = await b.wait_calls("BootNotification", 2)
        assert boots[-1]["reason"] == "RemoteReset"
        assert b.events()[-1]["triggerReason"] == "EVCommunicationLost"
        control.plug_in()
        await csms.wait_for(lambda: b.events()[-1]["eventType"] == "Started")
        assert (await csms.call(call21.Reset(type="Immediate"))).status == "Accepted"
        await csms.wait_for(lambda: b.events()[-1]["eventType"] == "Ended")
        ended = b.events()[-1]
        assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
            "ResetCommand",
            "ImmediateReset",
        )
        await csms.wait_for(lambda: len(csms.connections) == 3, timeout_s=15)
        boots = await b.wait_calls("BootNotification", 3)
        assert boots[-1]["reason"] == "RemoteReset"
        # After the restart the EV, still plugged in, gets a new transaction.
        await csms.wait_for(lambda: b.events()[-1]["eventType"] == "Started")


async def test_evse_reset_gives_the_evse_back(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        csms = b.csms
        statuses = lambda: [s["connectorStatus"] for s in csms.calls("StatusNotification")]  # noqa: E731
        assert (await csms.call(call21.Reset(type="Immediate", evse_id=1))).status == "Accepted"
        await csms.wait_for(lambda: statuses()[-2:] == ["Unavailable", "Available"])
        assert len(csms.connections) == 1
        assert (await csms.call(call21.Reset(type="Immediate", evse_id=4))).status == "Rejected"


def _tx_profile(pid: int, period: dict[str, Any], tx_id: str) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(seconds=5)
    return {
        "id": pid,
        "stack_level": 50,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": tx_id,
        "charging_schedule": [
            {
                "id": pid,
                "start_schedule": start.isoformat(),
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, **period}],
            }
        ],
    }


async def _composite(b: Bench, call: Any) -> list[dict[str, Any]]:
    answer = await b.csms.call(call.GetCompositeSchedule(duration=60, evse_id=1))
    assert answer.status == "Accepted"
    periods: list[dict[str, Any]] = answer.schedule["charging_schedule_period"]
    return periods


async def test_reporting_on_201_has_real_limits(tmp_path: Path) -> None:
    """OCPP 2.0.1: the composite has the EVSE's rated power idle (not 1 MW), the EV's maximum
    with one plugged in, and a legacy negative limit back as it came."""
    async with bench(tmp_path, "ocpp2.0.1") as b:
        assert await _composite(b, call201) == [{"start_period": 0, "limit": 22000.0}]
        b.control.plug_in()
        await b.wait_calls("NotifyEVChargingNeeds", 1)
        assert await _composite(b, call201) == [{"start_period": 0, "limit": 11000.0}]
        tx_id = b.events()[0]["transactionInfo"]["transactionId"]
        answer = await b.csms.call(
            call201.SetChargingProfile(
                evse_id=1, charging_profile=_tx_profile(9, {"limit": -3000.0}, tx_id)
            )
        )
        assert answer.status == "Accepted"
        await eventually(lambda: b.control.leases[-1].power_w == -3000.0)
        assert await _composite(b, call201) == [{"start_period": 0, "limit": -3000.0}]


async def test_reporting_on_21_says_what_is_executed(tmp_path: Path) -> None:
    """OCPP 2.1: a legacy negative limit is a CentralSetpoint in the composite and the
    TransactionEvents; ChargingOnly always has its limit; after NotifyAllowedEnergyTransfer
    ["DC"] the needs are renegotiated without BPT and nothing shows or does discharge; a new
    discharge profile is then refused (Rejected, InvalidOperationMode)."""
    async with bench(tmp_path) as b:
        assert await _composite(b, call21) == [
            {"start_period": 0, "operation_mode": "ChargingOnly", "limit": 22000.0}
        ]
        unknown = await b.csms.call(call21.GetCompositeSchedule(duration=60, evse_id=9))
        assert unknown.status == "Rejected"
        b.control.plug_in()
        await b.wait_calls("NotifyEVChargingNeeds", 1)
        tx_id = b.events()[0]["transactionInfo"]["transactionId"]
        legacy = _tx_profile(9, {"limit": -3000.0}, tx_id)
        assert (
            await b.csms.call(call21.SetChargingProfile(evse_id=1, charging_profile=legacy))
        ).status == "Accepted"
        await b.csms.wait_for(
            lambda: b.events()[-1]["transactionInfo"].get("operationMode") == "CentralSetpoint"
        )
        assert await _composite(b, call21) == [
            {
                "start_period": 0,
                "operation_mode": "CentralSetpoint",
                "limit": 11000.0,
                "discharge_limit": -3000.0,
                "setpoint": -3000.0,
            }
        ]
        setpoint = _tx_profile(
            10,
            {"operation_mode": "CentralSetpoint", "setpoint": -4000.0, "discharge_limit": -9000.0},
            tx_id,
        )
        setpoint["stack_level"] = 60
        await b.csms.call(call21.SetChargingProfile(evse_id=1, charging_profile=setpoint))
        await eventually(lambda: b.control.leases[-1].power_w == -4000.0)
        answer = await b.csms.call(
            call21.NotifyAllowedEnergyTransfer(transaction_id=tx_id, allowed_energy_transfer=["DC"])
        )
        assert answer.status == "Accepted"
        needs = (await b.wait_calls("NotifyEVChargingNeeds", 2))[-1]["chargingNeeds"]
        assert needs["requestedEnergyTransfer"] == "DC"
        assert needs["availableEnergyTransfer"] == ["DC"]
        assert "maxDischargePower" not in needs["v2xChargingParameters"]
        await eventually(lambda: b.control.leases[-1].power_w == 0.0)
        [period] = await _composite(b, call21)
        assert (period["setpoint"], period["discharge_limit"]) == (0.0, 0.0)
        # issue 13.5: a new discharge for the now charge-only session is refused, not executed
        again = _tx_profile(
            11,
            {"operation_mode": "CentralSetpoint", "setpoint": -2000.0, "discharge_limit": -2000.0},
            tx_id,
        )
        again["stack_level"] = 70
        refused = await b.csms.call(call21.SetChargingProfile(evse_id=1, charging_profile=again))
        assert refused.status == "Rejected"
        assert refused.status_info["reason_code"] == "InvalidOperationMode"
        installed = await b.csms.call(
            call21.GetChargingProfiles(request_id=77, charging_profile={"stack_level": 70})
        )
        assert installed.status == "NoProfiles"
        assert b.control.leases[-1].power_w == 0.0


class Sp3:
    """A security-profile-3 station whose client certificate (issued by the test CA) expires
    in 10 days, and the CSMS's TLS context that requires client certificates."""

    def __init__(self, pki: TestPki, tmp_path: Path) -> None:
        self.ca = CertificateAuthority(IssuedCertificate.load(pki.ca, pki.layout.ca_key))
        self.cert, self.key = tmp_path / "pki" / "client.pem", tmp_path / "pki" / "client.key"
        self.ca.issue_client("CS-0001", valid_days=10).write(self.cert, self.key)
        self.serial = serial(self.cert.read_text())
        csms_cert, csms_key = pki.server("csms")
        self.tls = server_context(csms_cert, csms_key, client_ca=pki.ca, require_client_cert=True)
        self.station = {
            "security_profile": 3,
            "password": None,
            "ca_cert": pki.ca,
            "client_cert": self.cert,
            "client_key": self.key,
            "certificate_renew_before_days": 0,  # only when the CSMS asks
        }

    def sign(self, csr: str) -> str:
        cert = self.ca.sign_csr(csr, identity="CS-0001")
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def serial(pem: str) -> int:
    return int(x509.load_pem_x509_certificate(pem.encode()).serial_number)


def _answered(connection: Any, action: str) -> bool:
    """Whether the CSMS has sent its answer to the station's CALL ``action``."""
    ids = {f.message[1] for f in connection.frames if f.direction == "in" and f.action == action}
    return any(
        f.direction == "out" and f.message[0] in (3, 4) and f.message[1] in ids
        for f in connection.frames
    )


@pytest.mark.parametrize("subprotocol", ["ocpp2.1", "ocpp2.0.1"])
async def test_certificate_renewal_asked_by_the_csms(
    pki: TestPki, tmp_path: Path, subprotocol: str
) -> None:
    """A02 (TC_A_11, TC_A_14): a certificate nobody asked for is Rejected with a security
    event; TriggerMessage SignChargingStationCertificate -> SignCertificate with a CSR for the
    station's identity -> CertificateSigned -> the next connection's TLS handshake presents
    the new certificate."""
    call = VERSIONS[subprotocol]
    sp3 = Sp3(pki, tmp_path)
    async with bench(tmp_path / "state", subprotocol, tls=sp3.tls, **sp3.station) as b:
        csms = b.csms
        assert csms.peer_serials == [sp3.serial]
        unasked = sp3.ca.issue_client("CS-0001").cert_pem().decode()
        answer = await csms.call(call.CertificateSigned(certificate_chain=unasked))
        assert answer.status == "Rejected"
        [event] = await b.wait_calls("SecurityEventNotification", 1)
        assert event["type"] == "InvalidChargingStationCertificate"
        answer = await csms.call(
            call.TriggerMessage(requested_message="SignChargingStationCertificate")
        )
        assert answer.status == "Accepted"
        [request] = await b.wait_calls("SignCertificate", 1)
        assert b.answered_before("TriggerMessage", "SignCertificate")
        assert request["certificateType"] == "ChargingStationCertificate"
        csr = x509.load_pem_x509_csr(request["csr"].encode())
        assert csr.subject.rfc4514_string().startswith("CN=CS-0001")
        # A CSMS signs after it has accepted the CSR: CertificateSigned follows the answer.
        await csms.wait_for(lambda: _answered(csms.connection, "SignCertificate"))
        chain = sp3.sign(request["csr"])
        answer = await csms.call(
            call.CertificateSigned(
                certificate_chain=chain, certificate_type="ChargingStationCertificate"
            )
        )
        assert answer.status == "Accepted"
        await csms.wait_for(lambda: len(csms.peer_serials) == 2, timeout_s=15)
        assert csms.peer_serials[-1] == serial(chain) != sp3.serial
        assert serial(sp3.cert.read_text()) == serial(chain)
        # Boot was accepted before: the new connection resumes with the EVSE statuses.
        await csms.wait_for(lambda: bool(csms.connection.calls("StatusNotification")))


async def test_a_renewal_cut_short_is_finished_before_connecting(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power lost after the new key was written but before the certificate (the pair no
    longer matches): the restarted station finishes the install and connects with the new
    certificate."""
    sp3 = Sp3(pki, tmp_path)
    config = station_config("wss://unused", tmp_path / "state", **sp3.station)
    renewal = CertificateRenewal(config, StationSettings.from_config(config))
    chain = sp3.sign(renewal.signing_request(now=datetime.now(UTC)))
    real_write, writes = certificates.write_private_file, []

    def write_then_lose_power(path: Path, data: bytes, *, force: bool) -> None:
        if len(writes) == 2:  # the chain journaled, the key replaced: not the certificate
            raise OSError("power lost")
        writes.append(path)
        real_write(path, data, force=force)

    monkeypatch.setattr(certificates, "write_private_file", write_then_lose_power)
    with pytest.raises(OSError, match="power lost"):
        renewal.install(chain, now=datetime.now(UTC))
    monkeypatch.setattr(certificates, "write_private_file", real_write)
    with pytest.raises(ssl.SSLError):
        ssl.create_default_context().load_cert_chain(sp3.cert, sp3.key)
    async with bench(tmp_path / "state", tls=sp3.tls, **sp3.station) as b:
        assert b.csms.peer_serials == [serial(chain)]
