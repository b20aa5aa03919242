"""Our CSMS with a station that is not ours: the ``ocpp`` library's own v2.1 / v2.0.1
``ChargePoint`` in the station role (tests/doubles/foreign_station.py), every frame both ways
checked against the OCA schemas with ``jsonschema``.

Covers B01 boot, C01 Authorize with the token list (TC_C_02/C_06/C_07: Unknown, Blocked,
Expired), E01/E02 transactions with an idToken, Q01 V2X charging needs, K01/K10 dispatch in
both directions and clear through the real DispatchRunner, B06/B05/B07 device model reads and
writes kept in the fleet database, B11 Reset, F01/F03 RequestStart/Stop, G03/G04
ChangeAvailability, A02 SignCertificate -> CertificateSigned (a request it would not sign
answered Rejected), and A02 over security profile 3: renewal asked for after the boot of a
station whose certificate expires soon, the old certificate refused once the new one is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.exceptions import InvalidStatus

from tests.conftest import TestPki
from tests.doubles.foreign_station import ForeignStation
from v2g_common.pki import CertificateAuthority, IssuedCertificate, client_context
from v2g_gateway.station.needs import charging_needs_request
from v2g_sim.ev import EvSpec, charging_needs
from vpp_core.csms import CsmsConfig, CsmsServer
from vpp_core.csms.equipment import Equipment, EquipmentSync
from vpp_core.dispatch.clock import SystemClock
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import DispatchRequest
from vpp_core.dispatch.progress import DispatchProgress
from vpp_core.dispatch.report import DispatchReport
from vpp_core.dispatch.runner import DispatchRunner
from vpp_core.fleet import FleetState, FleetStore, StationEntry, hash_password
from vpp_core.fleet.equipment import EquipmentStore, IdTokenRecord

pytestmark = pytest.mark.integration

PASSWORD = "foreign-station-password-01"
T0 = datetime.now(UTC)
TOKENS = [
    IdTokenRecord("TAG-OK", "ISO14443", "Accepted", group_id="FLEET-A"),
    IdTokenRecord("TAG-BLOCKED", "ISO14443", "Blocked"),
    IdTokenRecord("TAG-OLD", "ISO14443", "Accepted", expires_at=T0 - timedelta(days=1)),
]


@dataclass
class Core:
    csms: CsmsServer
    fleet: FleetState
    store: EquipmentStore
    ca: CertificateAuthority
    tls: bool = False

    @property
    def url(self) -> str:
        if self.tls:
            return f"wss://localhost:{self.csms.port}/ocpp"
        return f"ws://127.0.0.1:{self.csms.port}/ocpp"


@asynccontextmanager
async def open_core(tmp_path: Path, pki: TestPki | None = None) -> AsyncIterator[Core]:
    """Our CSMS with the token list and a signing CA; with ``pki`` on mutual TLS (profile 3
    stations, the PKI's CA signing), else plain websockets (profile 1)."""
    if pki is None:
        ca = CertificateAuthority.create()
        ca.root.write(tmp_path / "ca.pem", tmp_path / "ca.key")
        signing: dict[str, Any] = {
            "ca_cert_file": tmp_path / "ca.pem",
            "ca_key_file": tmp_path / "ca.key",
        }
    else:
        ca = CertificateAuthority(IssuedCertificate.load(pki.ca, pki.layout.ca_key))
        cert, key = pki.server("csms")
        signing = {
            "ca_cert_file": pki.ca,
            "ca_key_file": pki.layout.ca_key,
            "tls_cert_file": cert,
            "tls_key_file": key,
            "tls_client_ca_file": pki.ca,
        }
    fleet_store = await FleetStore.open(f"sqlite:///{tmp_path / 'fleet.db'}")
    records = EquipmentStore(fleet_store.engine)
    for token in TOKENS:
        await records.put_token(token, now=T0)
    config = CsmsConfig(
        host="127.0.0.1",
        port=0,
        allow_security_profile_1=True,
        ping_interval_s=0,
        id_token_policy="token_list",
        command_timeout_s=5,
        **signing,
    )
    equipment = Equipment.from_config(config, records=records)
    await EquipmentSync(equipment, records).refresh()
    fleet = FleetState()
    hashed = hash_password(PASSWORD)
    entries = [StationEntry(i, 1, True, "site-f", "north", hashed) for i in ("FS-21", "FS-201")]
    entries.append(StationEntry("FS-SP3", 3, True, "site-f", "north", None))
    fleet.set_entries(entries)
    try:
        async with CsmsServer(config, fleet, equipment=equipment) as csms:
            yield Core(csms, fleet, records, ca, tls=pki is not None)
    finally:
        await fleet_store.close()


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    async with open_core(tmp_path) as running:
        yield running


def v2x_needs() -> dict[str, Any]:
    ev = EvSpec(soc_pct=70.0, max_discharge_w=9_000.0, departure_in_s=10 * 3600.0)
    needs = charging_needs(ev, soc_pct=70.0, plugged_at=datetime.now(UTC))
    request = charging_needs_request(needs, evse_id=1, now=datetime.now(UTC), current_type="DC")
    return dict(request["charging_needs"])


async def test_a_foreign_21_station_through_authorize_transaction_dispatch_and_clear(
    core: Core,
) -> None:
    async with ForeignStation("FS-21", url=core.url, password=PASSWORD) as station:
        assert (await station.boot()).status == "Accepted"
        assert await station.authorize("TAG-OK") == "Accepted"
        assert await station.authorize("TAG-BLOCKED") == "Blocked"
        assert await station.authorize("TAG-OLD") == "Expired"
        assert await station.authorize("NOBODY") == "Unknown"
        answer = await station.call(
            station.calls.Authorize(id_token={"id_token": "TAG-OK", "type": "ISO14443"})
        )
        assert answer.id_token_info["group_id_token"] == {"id_token": "FLEET-A", "type": "Central"}
        started = await station.start_transaction(
            "tx-f21", {"id_token": "TAG-OK", "type": "ISO14443"}
        )
        assert started.id_token_info["status"] == "Accepted"
        assert (await station.notify_needs(v2x_needs())).status == "Accepted"
        station.start_metering()
        await _wait(lambda: core.fleet.session("FS-21", "tx-f21") is not None)
        session = core.fleet.session("FS-21", "tx-f21")
        assert session is not None
        await _wait(lambda: session.limits.max_discharge_w == 9000.0)
        for target_w in (-4_000.0, 4_000.0):
            report = await _dispatch(core, target_w, f"foreign-{target_w:+.0f}")
            assert report.status == "completed"
            sent = [p for a, p in station.received if a == "SetChargingProfile"]
            period = sent[-1]["charging_schedule"][0]["charging_schedule_period"][0]
            assert period["operation_mode"] == "CentralSetpoint"
            assert period["setpoint"] * target_w > 0  # same direction as the dispatch
            assert sent[-1]["transaction_id"] == "tx-f21"
            assert station.profiles == {}, "cleared at the end of the window"
            cleared = [p for a, p in station.received if a == "ClearChargingProfile"]
            assert cleared
        await station.end_transaction()
    assert station.violations == []


async def test_device_model_and_management_of_a_foreign_station(core: Core) -> None:
    ops = core.csms.operations
    for identity, subprotocol in (("FS-21", "ocpp2.1"), ("FS-201", "ocpp2.0.1")):
        async with ForeignStation(
            identity, url=core.url, password=PASSWORD, subprotocol=subprotocol
        ) as station:
            await station.boot()
            variables = await ops.base_report(identity, "FullInventory")
            names = {(v.component, v.variable): v.value for v in variables}
            assert names[("SmartChargingCtrlr", "RateUnit")] == "W,A"
            assert len(variables) == 5  # two NotifyReports, joined
            results = await ops.get_variables(
                identity,
                [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    },
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "Nope"}},
                ],
            )
            assert [r["attribute_status"] for r in results] == ["Accepted", "UnknownVariable"]
            results = await ops.set_variables(
                identity,
                [
                    {
                        "component": {"name": "SampledDataCtrlr"},
                        "variable": {"name": "TxUpdatedInterval"},
                        "attribute_value": "15",
                    }
                ],
            )
            assert results[0]["attribute_status"] == "Accepted"
            stored = {
                (v.component, v.variable): v.value for v in await core.store.variables(identity)
            }
            assert stored[("SampledDataCtrlr", "TxUpdatedInterval")] == "15"
            assert stored[("SmartChargingCtrlr", "Enabled")] == "true"
            assert (await ops.reset(identity, "OnIdle")).status == "Accepted"
            assert (await ops.change_availability(identity, operative=False, evse_id=1)).status == (
                "Accepted"
            )
            result, _tx = await ops.request_start(
                identity, {"id_token": "TAG-OK", "type": "ISO14443"}, remote_start_id=5, evse_id=1
            )
            assert result.status == "Accepted"
            assert (await ops.request_stop(identity, "no-such-tx")).status == "Rejected"
            assert (await ops.renew_certificate(identity)).status == "Accepted"
            kinds = [a for a, _ in station.received]
            assert {
                "Reset",
                "ChangeAvailability",
                "RequestStartTransaction",
                "TriggerMessage",
            } <= set(kinds)
        assert station.violations == []


async def test_sign_certificate_is_answered_with_a_certificate_from_the_ca(core: Core) -> None:
    async with ForeignStation("FS-21", url=core.url, password=PASSWORD) as station:
        await station.boot()
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FS-21")]))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
            .decode()
        )
        answer = await station.call(
            station.calls.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate")
        )
        assert answer.status == "Accepted"
        await _wait(lambda: bool(station.certificates))
        cert = x509.load_pem_x509_certificate(station.certificates[0].encode())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "FS-21"
        assert cert.public_key() == key.public_key()
        cert.verify_directly_issued_by(core.ca.root.certificate)
        [record] = await core.store.certificates("FS-21")
        assert record.serial == format(cert.serial_number, "x")
        # A request for another identity is Rejected at once, with the reason, and not signed.
        other = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FS-201")]))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
            .decode()
        )
        answer = await station.call(station.calls.SignCertificate(csr=other))
        assert answer.status == "Rejected"
        assert answer.status_info["reason_code"] == "InvalidCSR"
        assert "CN is not 'FS-21'" in answer.status_info["additional_info"]
        # A type the CSMS does not issue: Rejected, and the (valid) request is not signed either.
        answer = await station.call(
            station.calls.SignCertificate(csr=csr, certificate_type="V2GCertificate")
        )
        assert (answer.status, answer.status_info["reason_code"]) == ("Rejected", "NotSupported")
        await station.boot()  # one more round trip: a CertificateSigned would have come first
        assert len(station.certificates) == 1
        assert len(await core.store.certificates("FS-21")) == 1
    assert station.violations == []


async def test_a_foreign_sp3_station_is_asked_to_renew_and_its_old_certificate_refused(
    tmp_path: Path, pki: TestPki
) -> None:
    """A02 over security profile 3 with a station that is not ours: its certificate expires
    in 10 days, so after its BootNotification the CSMS sends TriggerMessage
    SignChargingStationCertificate; its SignCertificate is answered with a CertificateSigned
    from the CA; the station reconnects with it (not asked again), and the old certificate
    is then refused at the handshake (HTTP 403)."""
    async with open_core(tmp_path, pki) as core:
        old_cert, old_key = tmp_path / "old.pem", tmp_path / "old.key"
        core.ca.issue_client("FS-SP3", valid_days=10).write(old_cert, old_key)
        old = client_context(pki.ca, cert=old_cert, key=old_key)
        renewal = ("TriggerMessage", {"message": "SignChargingStationCertificate"})
        async with ForeignStation("FS-SP3", url=core.url, ssl_context=old) as station:
            await station.boot()
            await _wait(lambda: renewal in station.received)
            key = ec.generate_private_key(ec.SECP256R1())
            answer = await station.call(
                station.calls.SignCertificate(
                    csr=_csr(key, "FS-SP3"), certificate_type="ChargingStationCertificate"
                )
            )
            assert answer.status == "Accepted"
            await _wait(lambda: bool(station.certificates))
        assert station.violations == []
        new_cert, new_key = tmp_path / "new.pem", tmp_path / "new.key"
        new_cert.write_text(station.certificates[0])
        new_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        new = client_context(pki.ca, cert=new_cert, key=new_key)
        async with ForeignStation("FS-SP3", url=core.url, ssl_context=new) as renewed:
            await renewed.boot()
            await renewed.boot()  # a round trip after the boot's: a trigger would have come
            assert renewal not in renewed.received
        assert renewed.violations == []
        with pytest.raises(InvalidStatus) as refused:
            async with ForeignStation("FS-SP3", url=core.url, ssl_context=old):
                pass
        assert refused.value.response.status_code == 403


def _csr(key: ec.EllipticCurvePrivateKey, identity: str) -> str:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


DISPATCH_CONFIG = DispatchConfig(
    control_period_s=0.2,
    ramp_in_s=0.0,
    final_meter_wait_s=0.5,
    command_timeout_s=5.0,
    profile_survey_interval_s=60.0,
)


async def _dispatch(
    core: Core,
    target_w: float,
    dispatch_id: str,
    *,
    duration_s: float = 2.0,
    meanwhile: Callable[[DispatchProgress], Awaitable[None]] | None = None,
) -> DispatchReport:
    """Run one dispatch through the real DispatchRunner; ``meanwhile`` runs once it started."""
    clock = SystemClock()
    request = DispatchRequest(
        target_w=target_w, start=clock.now() + timedelta(seconds=0.5), duration_s=duration_s
    )
    async with DispatchRunner(core.fleet, core.csms.commands, clock, DISPATCH_CONFIG) as runner:
        progress = runner.start(dispatch_id, request)
        async with asyncio.timeout(30):
            if meanwhile is not None:
                await meanwhile(progress)
            progress = await runner.wait(dispatch_id)
    assert progress.report is not None, progress.events
    return progress.report


async def _wait(predicate: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - fleet state has no event of its own
            await asyncio.sleep(0.02)
