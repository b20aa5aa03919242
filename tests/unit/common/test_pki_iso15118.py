"""The ISO 15118 PKI: the chain the SECC presents verifies against the EVCC's V2G root, key
usages as ISO 15118 sets them, the leaf's CN is the charger, files as the library reads them."""

from __future__ import annotations

import itertools
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from v2g_common.pki import PkiError
from v2g_common.pki.cli import main as provision_cli
from v2g_common.pki.iso15118 import Iso15118Layout, Iso15118Pki, provision_iso15118


def _certs(layout: Iso15118Layout, secc_id: str) -> Path:
    return layout.secc_dir(secc_id) / "iso15118_2" / "certs"


def _keys(layout: Iso15118Layout, secc_id: str) -> Path:
    return layout.secc_dir(secc_id) / "iso15118_2" / "private_keys"


def _tls_peer_cn(layout: Iso15118Layout, secc_id: str, trust: Path) -> str:
    """Handshake the SECC's files (chain, encrypted key, its password) against a client that
    trusts only ``trust``; the peer's CN."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(
        _certs(layout, secc_id) / "cpoCertChain.pem",
        _keys(layout, secc_id) / "seccLeaf.key",
        password=(_keys(layout, secc_id) / "seccLeafPassword.txt").read_text().strip(),
    )
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.load_verify_locations(cafile=trust)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"x")
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client.wrap_socket(socket.create_connection(listener.getsockname(), 5)) as tls:
            subject = dict(pair[0] for pair in tls.getpeercert()["subject"])
            return str(subject["commonName"])
    finally:
        thread.join(5)
        listener.close()


def test_the_secc_chain_verifies_against_the_evcc_root_over_tls(tmp_path: Path) -> None:
    layout = provision_iso15118(tmp_path, ["CS-0001"])
    trust = layout.evcc_dir / "iso15118_2" / "certs" / "v2gRootCACert.pem"
    assert _tls_peer_cn(layout, "CS-0001", trust) == "CS-0001"


def test_an_evcc_with_another_root_refuses_the_secc(tmp_path: Path) -> None:
    layout = provision_iso15118(tmp_path / "ours", ["CS-0001"])
    other = provision_iso15118(tmp_path / "other", ["CS-0001"])
    trust = other.evcc_dir / "iso15118_2" / "certs" / "v2gRootCACert.pem"
    with pytest.raises(ssl.SSLCertVerificationError):
        _tls_peer_cn(layout, "CS-0001", trust)


def test_each_link_of_the_chain_is_signed_by_the_next_and_ca_constraints() -> None:
    pki = Iso15118Pki.create("CS-0042")
    chain = [pki.secc, pki.sub_ca2, pki.sub_ca1, pki.root]
    for cert, issuer in itertools.pairwise(chain):
        cert.certificate.verify_directly_issued_by(issuer.certificate)
    pki.root.certificate.verify_directly_issued_by(pki.root.certificate)
    constraints = [
        c.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value for c in chain
    ]
    assert [(b.ca, b.path_length) for b in constraints] == [
        (False, None),
        (True, 0),
        (True, 1),
        (True, 2),
    ]
    for issued in chain:
        assert isinstance(issued.private_key.curve, ec.SECP256R1)


def test_key_usage_ca_signs_certificates_leaf_signs_and_agrees_keys() -> None:
    pki = Iso15118Pki.create("CS-0042")
    for ca in (pki.root, pki.sub_ca1, pki.sub_ca2):
        usage = ca.certificate.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical
        assert usage.value.key_cert_sign
        assert usage.value.crl_sign
        assert not usage.value.key_agreement
    leaf = pki.secc.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert leaf.digital_signature
    assert leaf.key_agreement
    assert not leaf.key_cert_sign
    assert pki.secc.common_name == "CS-0042"


def test_files_are_named_as_the_library_reads_them_private_and_not_overwritten(
    tmp_path: Path,
) -> None:
    layout = provision_iso15118(tmp_path, ["CS-0001", "CS-0002"])
    certs = _certs(layout, "CS-0002")
    names = {p.name for p in certs.iterdir()}
    assert names == {
        "seccLeafCert.pem",
        "seccLeafCert.der",
        "cpoSubCA2Cert.der",
        "cpoSubCA1Cert.der",
        "v2gRootCACert.pem",
        "v2gRootCACert.der",
        "cpoCertChain.pem",
    }
    key = _keys(layout, "CS-0002") / "seccLeaf.key"
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (layout.secc_dir("CS-0002") / "ca").exists()
    root = (certs / "v2gRootCACert.pem").read_bytes()
    assert root == (_certs(layout, "CS-0001") / "v2gRootCACert.pem").read_bytes()
    with pytest.raises(PkiError, match="--force"):
        provision_iso15118(tmp_path, ["CS-0001"])
    provision_iso15118(tmp_path, ["CS-0003"])  # a new charger: same root, no refusal
    assert (_certs(layout, "CS-0003") / "v2gRootCACert.pem").read_bytes() == root


def test_cli_iso15118_issues_and_show_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert provision_cli(["init", "--dir", str(tmp_path)]) == 0
    assert provision_cli(["iso15118", "--dir", str(tmp_path), "CS-7"]) == 0
    out = capsys.readouterr().out
    assert "iso15118/secc/CS-7/iso15118_2/certs/seccLeafCert.pem\tCN=CS-7" in out
    assert "ca.pem\tCN=V2G VPP Root CA" in out
    assert provision_cli(["iso15118", "--dir", str(tmp_path), "bad:id"]) == 2
    assert "forbidden" in capsys.readouterr().err
