"""The CSMS's equipment rules from tables: the idToken policy (C01), the certificate rules at
the handshake (revoked, superseded on first use of a renewal, pinned), and device-model rows
from reports and results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from v2g_common.pki import CertificateAuthority
from vpp_core.csms import device_model
from vpp_core.csms.certificates import PeerCertificate, SigningRefusal, StationCertificates
from vpp_core.csms.config import CsmsConfig
from vpp_core.csms.equipment import Equipment
from vpp_core.csms.errors import CertificateRefused, SigningCaUnusable
from vpp_core.csms.tokens import IdTokenPolicy
from vpp_core.fleet.equipment import CertificateRecord, IdTokenRecord

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LIST = [
    IdTokenRecord("A", "ISO14443", "Accepted", group_id="G", expires_at=NOW + timedelta(days=9)),
    IdTokenRecord("B", "ISO14443", "Blocked"),
    IdTokenRecord("C", "eMAID", "Accepted", expires_at=NOW),
    IdTokenRecord("D", "ISO14443", "Invalid"),
]


@pytest.mark.parametrize(
    ("policy", "token", "expected"),
    [
        ("token_list", {"id_token": "A", "type": "ISO14443"}, "Accepted"),
        ("token_list", {"id_token": "A", "type": "eMAID"}, "Unknown"),  # type is part of it
        ("token_list", {"id_token": "B", "type": "ISO14443"}, "Blocked"),
        ("token_list", {"id_token": "C", "type": "eMAID"}, "Expired"),
        ("token_list", {"id_token": "D", "type": "ISO14443"}, "Invalid"),
        ("token_list", {"id_token": "Z", "type": "ISO14443"}, "Unknown"),
        ("token_list", {"id_token": "", "type": "NoAuthorization"}, "Accepted"),
        ("accept_all", {"id_token": "B", "type": "ISO14443"}, "Accepted"),
        ("accept_all", {"id_token": "Z", "type": "ISO14443"}, "Accepted"),
    ],
)
def test_id_token_policy(policy: Any, token: dict[str, str], expected: str) -> None:
    info = IdTokenPolicy(policy, LIST).authorize(token, now=NOW)
    assert info["status"] == expected


def test_accepted_token_carries_group_and_expiry_and_updates_apply() -> None:
    policy = IdTokenPolicy("token_list", LIST)
    info = policy.authorize({"id_token": "A", "type": "ISO14443"}, now=NOW)
    assert info["group_id_token"] == {"id_token": "G", "type": "Central"}
    assert info["cache_expiry_date_time"] == (NOW + timedelta(days=9)).isoformat()
    policy.update([IdTokenRecord("A", "ISO14443", "Blocked")])
    assert policy.authorize({"id_token": "A", "type": "ISO14443"}, now=NOW)["status"] == "Blocked"


def peer(serial: str) -> PeerCertificate:
    return PeerCertificate(serial, NOW + timedelta(days=10))


def csr_for(identity: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)])
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode()


def test_renewal_supersedes_the_old_certificate_on_first_use() -> None:
    certs = StationCertificates(CertificateAuthority.create(now=NOW), renew_before_days=30)
    old = peer("aa")
    assert certs.refusal("CS-1", old) is None
    assert certs.connected("CS-1", old, now=NOW) == []  # not ours: nothing to do yet
    assert certs.renewal_due(old, now=NOW)
    chain, issued = certs.sign("CS-1", csr_for("CS-1"), now=NOW)
    assert issued.issued_at == NOW
    assert issued.station_id == "CS-1"
    assert x509.load_pem_x509_certificate(chain.encode()).serial_number == int(issued.serial, 16)
    assert certs.refusal("CS-1", old) is None  # still fine until the new one is used
    new = peer(issued.serial)
    changed = certs.connected("CS-1", new, now=NOW + timedelta(minutes=1))
    assert {(c.serial, c.revocation_reason) for c in changed} == {
        (issued.serial, None),
        ("aa", "superseded"),
    }
    assert "revoked" in (certs.refusal("CS-1", old) or "")
    assert certs.refusal("CS-1", new) is None
    # Pinned: an old certificate nobody listed is refused too.
    assert "superseded" in (certs.refusal("CS-1", peer("bb")) or "")
    # Another renewal later is accepted before and after its first use.
    _, later = certs.sign("CS-1", csr_for("CS-1"), now=NOW + timedelta(days=1))
    assert certs.refusal("CS-1", peer(later.serial)) is None
    certs.connected("CS-1", peer(later.serial), now=NOW + timedelta(days=1))
    assert "revoked" in (certs.refusal("CS-1", new) or "")
    assert certs.refusal("CS-2", peer("cc")) is None  # other stations are not affected


def test_a_row_read_back_before_its_write_does_not_undo_a_revocation() -> None:
    """The handshake revoked the old certificate in memory; the database still has the row
    without it (write in flight or failed) when the sync reads it again."""
    certs = StationCertificates(CertificateAuthority.create(now=NOW))
    _, issued = certs.sign("CS-1", csr_for("CS-1"), now=NOW)
    old = CertificateRecord("aa", "CS-1", not_after=NOW + timedelta(days=10))
    certs.update([old])
    certs.connected("CS-1", peer(issued.serial), now=NOW)
    certs.update([old, issued])  # as stored before the connection's changes were written
    assert "revoked" in (certs.refusal("CS-1", peer("aa")) or "")
    assert "superseded" in (certs.refusal("CS-1", peer("bb")) or "")  # still pinned
    record = certs.record(issued.serial)
    assert record is not None
    assert record.first_used_at == NOW


def test_hand_revocation_and_records_loaded_from_the_database() -> None:
    certs = StationCertificates()
    certs.update(
        [
            CertificateRecord("01", "CS-1", revoked_at=NOW, revocation_reason="keyCompromise"),
            CertificateRecord("02", "CS-2", issued_at=NOW, first_used_at=NOW),
        ]
    )
    assert "keyCompromise" in (certs.refusal("CS-1", peer("01")) or "")
    assert "belongs to 'CS-2'" in (certs.refusal("CS-1", peer("02")) or "")
    assert "superseded" in (certs.refusal("CS-2", peer("03")) or "")  # pinned from the db
    certs.revoke("04", "CS-3", reason="lost", now=NOW)
    assert "lost" in (certs.refusal("CS-3", peer("04")) or "")


def rsa_csr_for(identity: str, bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)])
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("certificate_type", "csr", "code", "message"),
    [
        ("ChargingStationCertificate", lambda: csr_for("CS-2"), "InvalidCSR", "CN is not"),
        (None, lambda: "garbage", "InvalidCSR", "not a PEM"),
        (None, lambda: "-----BEGIN CERTIFICATE REQUEST-----\né", "InvalidCSR", "not a PEM"),
        (None, lambda: rsa_csr_for("CS-1", 1024), "InvalidCSR", "too short"),
        ("V2GCertificate", lambda: csr_for("CS-1"), "NotSupported", "V2GCertificate"),
    ],
)
def test_signing_refuses_what_it_would_not_sign(
    certificate_type: str | None, csr: Any, code: str, message: str
) -> None:
    """Refused when the SignCertificate is answered (Rejected, with the reason), and never
    signed."""
    certs = StationCertificates(CertificateAuthority.create(now=NOW))
    request = csr()
    refusal = certs.refuse_request("CS-1", certificate_type, request)
    assert refusal is not None
    assert (refusal.reason_code, message in refusal.reason) == (code, True)
    if certificate_type is None:
        with pytest.raises(CertificateRefused, match=message):
            certs.sign("CS-1", request, now=NOW)
    assert certs.refuse_request("CS-1", None, csr_for("CS-1")) is None
    unconfigured = StationCertificates().refuse_request("CS-1", None, csr_for("CS-1"))
    assert unconfigured == SigningRefusal("NotSupported", "this CSMS has no signing CA configured")


def test_peer_certificate_from_getpeercert() -> None:
    got = PeerCertificate.from_peercert(
        {"serialNumber": "00AB12", "notAfter": "Mar  1 12:00:00 2027 GMT"}
    )
    assert got == PeerCertificate("ab12", datetime(2027, 3, 1, 12, 0, tzinfo=UTC))
    assert PeerCertificate.from_peercert({}) is None


def test_device_model_rows() -> None:
    report = [
        {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "Power"},
            "variable_attribute": [
                {"type": "Actual", "value": "22000", "mutability": "ReadOnly"},
                {"type": "MaxSet", "value": "22000"},
            ],
            "variable_characteristics": {
                "data_type": "decimal",
                "unit": "W",
                "supports_monitoring": False,
            },
        }
    ]
    rows = device_model.from_report(report, now=NOW)
    assert [
        (r.component, r.evse_id, r.variable, r.attribute_type, r.value, r.unit) for r in rows
    ] == [
        ("EVSE", 1, "Power", "Actual", "22000", "W"),
        ("EVSE", 1, "Power", "MaxSet", "22000", "W"),
    ]
    where = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    got = device_model.from_get_results(
        [
            {**where, "attribute_status": "Accepted", "attribute_value": "60"},
            {**where, "attribute_status": "UnknownVariable"},
        ],
        now=NOW,
    )
    assert [(r.variable, r.value) for r in got] == [("HeartbeatInterval", "60")]
    written = device_model.from_set_results(
        [{**where, "attribute_value": "30"}, {**where, "attribute_value": "x"}],
        [
            {**where, "attribute_status": "RebootRequired"},
            {**where, "attribute_status": "Rejected"},
        ],
        now=NOW,
    )
    assert [r.value for r in written] == ["30"]


def test_a_missing_signing_ca_is_a_clear_start_up_error(tmp_path: Path) -> None:
    config = CsmsConfig(ca_cert_file=tmp_path / "ca.pem", ca_key_file=tmp_path / "ca.key")
    with pytest.raises(SigningCaUnusable, match=r"csms\.ca_cert_file"):
        Equipment.from_config(config)
