"""The station's own certificate renewal (A02/A03) on an injected clock: when it asks, the
signing request it sends, and what it will install (only a certificate for its pending key and
identity, valid now, issued by the CA it trusts)."""

from __future__ import annotations

import importlib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from v2g_common.pki import CertificateAuthority
from v2g_gateway.station import certificates
from v2g_gateway.station.certificates import CertificateRejected, CertificateRenewal
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.settings import StationSettings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Setup:
    def __init__(self, tmp_path: Path, *, days_left: int = 10) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.ca = CertificateAuthority.create(now=NOW - timedelta(days=400))
        self.ca_file = tmp_path / "ca.pem"
        self.ca_file.write_bytes(self.ca.root.cert_pem())
        current = self.ca.issue_client(
            "CS-0001", valid_days=400 + days_left, now=NOW - timedelta(days=400)
        )
        self.cert, self.key = tmp_path / "client.pem", tmp_path / "client.key"
        current.write(self.cert, self.key)
        self.config = StationConfig(
            csms_url="wss://csms.example/ocpp",
            identity="CS-0001",
            security_profile=3,
            ca_cert=self.ca_file,
            client_cert=self.cert,
            client_key=self.key,
            state_dir=tmp_path / "state",
            certificate_renew_before_days=30,
            cert_signing_wait_minimum_s=60,
            cert_signing_repeat_times=2,
        )
        self.renewal = CertificateRenewal(self.config, StationSettings.from_config(self.config))

    def signed(
        self, csr_pem: str, *, ca: CertificateAuthority | None = None, identity: str = "CS-0001"
    ) -> str:
        cert = (ca or self.ca).sign_csr(csr_pem, identity=identity, now=NOW)
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_asks_only_near_expiry_and_retries_with_doubling_waits(tmp_path: Path) -> None:
    assert not Setup(tmp_path / "far", days_left=60).renewal.due(now=NOW)
    s = Setup(tmp_path, days_left=10)
    assert s.renewal.due(now=NOW)
    csr = x509.load_pem_x509_csr(s.renewal.signing_request(now=NOW).encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CS-0001"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "V2G VPP"
    waits = []
    t = NOW
    while True:
        t += timedelta(seconds=1)
        if t - NOW > timedelta(hours=1):
            break
        if s.renewal.due(now=t):
            waits.append(round((t - NOW).total_seconds()))
            s.renewal.signing_request(now=t)
    # 60 s after the first request, then 120 s after the second; then it gives up.
    assert waits == [60, 180]


def test_a_restart_keeps_the_pending_key(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    first = x509.load_pem_x509_csr(s.renewal.signing_request(now=NOW).encode())
    again = CertificateRenewal(s.config, StationSettings.from_config(s.config))
    second = x509.load_pem_x509_csr(again.signing_request(now=NOW).encode())
    assert first.public_key() == second.public_key()
    assert oct((tmp_path / "state" / "client-renewal.key").stat().st_mode & 0o777) == "0o600"


def test_installs_a_good_certificate_in_place(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    old_serial = x509.load_pem_x509_certificate(s.cert.read_bytes()).serial_number
    chain = s.signed(s.renewal.signing_request(now=NOW))
    s.renewal.install(chain, now=NOW)
    installed = x509.load_pem_x509_certificate(s.cert.read_bytes())
    assert installed.serial_number == x509.load_pem_x509_certificate(chain.encode()).serial_number
    assert installed.serial_number != old_serial
    key = serialization.load_pem_private_key(s.key.read_bytes(), None)
    assert key.public_key() == installed.public_key()
    assert not (tmp_path / "state" / "client-renewal.key").exists()
    assert not s.renewal.due(now=NOW)  # the new one is good for 825 days


class Crash(Exception):
    """The power failing in the middle of an install."""


def usable_pair(cert: Path, key: Path) -> int:
    """The serial of a certificate the TLS stack accepts with that key (raises otherwise)."""
    ssl.create_default_context().load_cert_chain(cert, key)
    return int(x509.load_pem_x509_certificate(cert.read_bytes()).serial_number)


@pytest.mark.parametrize("writes_done", [0, 1, 2])
def test_an_install_cut_short_is_finished_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writes_done: int
) -> None:
    """Power lost after 0 (chain), 1 (key) or 2 (certificate) of the install's file writes:
    the next start leaves a key and certificate that belong together — the new pair once the
    chain was written, the old one before."""
    s = Setup(tmp_path)
    old_serial = usable_pair(s.cert, s.key)
    chain = s.signed(s.renewal.signing_request(now=NOW))
    new_serial = x509.load_pem_x509_certificate(chain.encode()).serial_number
    real_write = certificates.write_private_file
    writes = []

    def failing_write(path: Path, data: bytes, *, force: bool) -> None:
        if len(writes) == writes_done:
            raise Crash(path)
        writes.append(path)
        real_write(path, data, force=force)

    monkeypatch.setattr(certificates, "write_private_file", failing_write)
    with pytest.raises(Crash):
        s.renewal.install(chain, now=NOW)
    monkeypatch.setattr(certificates, "write_private_file", real_write)
    restarted = CertificateRenewal(s.config, StationSettings.from_config(s.config))
    finished = restarted.finish_interrupted_install()
    assert usable_pair(s.cert, s.key) == (new_serial if writes_done else old_serial)
    assert finished is (writes_done > 0)
    state = tmp_path / "state"
    assert not (state / "client-renewal.pem").exists()
    # Before the chain was written the request is still pending (its key kept); after, done.
    assert (state / "client-renewal.key").exists() is (writes_done == 0)


def test_a_pending_key_already_installed_is_not_reused(tmp_path: Path) -> None:
    """Cut short after the pending chain was removed but before the pending key: that key is
    the installed one, and the next renewal makes a fresh key."""
    s = Setup(tmp_path)
    s.renewal.install(s.signed(s.renewal.signing_request(now=NOW)), now=NOW)
    pending = tmp_path / "state" / "client-renewal.key"
    pending.write_bytes(s.key.read_bytes())
    restarted = CertificateRenewal(s.config, StationSettings.from_config(s.config))
    assert restarted.finish_interrupted_install() is False
    assert not pending.exists()
    csr = x509.load_pem_x509_csr(restarted.signing_request(now=NOW).encode())
    installed = x509.load_pem_x509_certificate(s.cert.read_bytes())
    assert csr.public_key() != installed.public_key()


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("other key", "not for the key"),
        ("other identity", "CN is not"),
        ("other CA", "not issued by the trusted CA"),
        ("not pending", "no certificate signing request is pending"),
        ("garbage", "not a PEM certificate chain"),
    ],
)
def test_refuses_what_it_did_not_ask_for(tmp_path: Path, case: str, reason: str) -> None:
    s = Setup(tmp_path)
    before = s.cert.read_bytes()
    csr = s.renewal.signing_request(now=NOW)
    if case == "other key":
        other = Setup(tmp_path / "other")
        chain = other.signed(other.renewal.signing_request(now=NOW), ca=s.ca)
    elif case == "other identity":
        chain = _for_key_with_cn(s.ca, csr, "CS-0002")
    elif case == "other CA":
        chain = s.signed(csr, ca=CertificateAuthority.create(now=NOW))
    elif case == "not pending":
        chain = s.signed(csr)
        (tmp_path / "state" / "client-renewal.key").unlink()
    else:
        chain = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    with pytest.raises(CertificateRejected, match=reason):
        s.renewal.install(chain, now=NOW)
    assert s.cert.read_bytes() == before


def _for_key_with_cn(ca: CertificateAuthority, csr_pem: str, cn: str) -> str:
    """A certificate for the request's key but another CN (a CSMS's mistake, or an attack)."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.root.certificate.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(days=30))
        .sign(ca.root.private_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_without_cryptography_renewal_is_unavailable_not_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A charger installed without v2g-gateway[certificate-renewal]: no renewal, a clear
    refusal, nothing raised elsewhere."""
    s = Setup(tmp_path)
    real_import = importlib.import_module

    def no_crypto(name: str, package: str | None = None) -> object:
        if name == "v2g_gateway.station.certificate_crypto":
            raise ImportError("No module named 'cryptography'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_crypto)
    renewal = CertificateRenewal(s.config, StationSettings.from_config(s.config))
    assert not renewal.enabled
    assert not renewal.due(now=NOW)
    with pytest.raises(CertificateRejected, match="no certificate signing request"):
        renewal.install("x", now=NOW)
