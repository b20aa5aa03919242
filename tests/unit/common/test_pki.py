"""PKI: certificates chain to the CA, CN carries the identity, files are private."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from v2g_common.pki import CertificateAuthority, PkiError, check_identity, provision
from v2g_common.pki.cli import main as provision_cli


def test_provision_writes_private_files_and_refuses_overwrite(tmp_path: Path) -> None:
    layout = provision(tmp_path, clients=["CS-0001"])
    for path in (layout.ca_key, layout.server_key("csms"), layout.client_key("CS-0001")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(PkiError, match="exists"):
        provision(tmp_path, clients=["CS-0001"])
    before = layout.client_cert("CS-0001").read_bytes()
    provision(tmp_path, clients=["CS-0001"], force=True)
    assert layout.client_cert("CS-0001").read_bytes() != before


def test_client_certificate_cn_is_identity_and_chains_to_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority.create()
    issued = ca.issue_client("CS-0042")
    assert issued.common_name == "CS-0042"
    eku = issued.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    issued.certificate.verify_directly_issued_by(ca.root.certificate)


@pytest.mark.parametrize("bad", ["", "a" * 49, "CS:1", "site/x", "a#b", "x+y"])
def test_identity_rules(bad: str) -> None:
    with pytest.raises(PkiError):
        check_identity(bad)


def test_server_certificate_verifies_for_its_sans(tmp_path: Path) -> None:
    layout = provision(tmp_path, server_hosts=["localhost", "127.0.0.1"])
    ctx = ssl.create_default_context(cafile=str(layout.ca_cert))
    # load_cert_chain proves key and cert match; SAN/hostname checked in TLS integration tests
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(layout.server_cert("csms"), layout.server_key("csms"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    cert = x509.load_pem_x509_certificate(layout.server_cert("csms").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)


def test_cli_init_client_and_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert provision_cli(["init", "--dir", str(tmp_path)]) == 0
    assert provision_cli(["client", "--dir", str(tmp_path), "CS-7"]) == 0
    assert "CN=CS-7" in capsys.readouterr().out
    assert provision_cli(["client", "--dir", str(tmp_path), "CS-7"]) == 2
    assert "--force" in capsys.readouterr().err
