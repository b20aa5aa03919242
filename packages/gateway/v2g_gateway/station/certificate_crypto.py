"""The cryptography the station's certificate renewal needs: a key and CSR, the expiry of a
certificate file, and checking a CertificateSigned chain. Needs ``cryptography``, which a
charger has only with ``v2g-gateway[certificate-renewal]``; imported only when a
security-profile-3 station renews (:mod:`.certificates`). Pure apart from reading files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from v2g_gateway.station.errors import CertificateRejected

__all__ = ["SignedCertificate", "check_chain", "expires_at", "new_key_pem", "signing_request"]


def expires_at(cert_path: Path) -> datetime:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).not_valid_after_utc


def new_key_pem() -> bytes:
    """A new EC P-256 private key, PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def signing_request(key_pem: bytes, *, identity: str, organization: str) -> str:
    """A PEM CSR for the key: CN = identity, O = organization."""
    key = serialization.load_pem_private_key(key_pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateRejected("the pending key is not an EC key")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, identity),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


class SignedCertificate:
    """What the log says about an installed certificate."""

    def __init__(self, serial: int, not_after: datetime) -> None:
        self.serial = serial
        self.not_after = not_after


def check_chain(
    chain_pem: str, *, key_pem: bytes, identity: str, ca_path: Path | None, now: datetime
) -> SignedCertificate:
    """Raise :class:`CertificateRejected` unless the chain's leaf is for ``key_pem`` and
    ``identity``, valid at ``now`` and issued (directly or through the chain) by ``ca_path``."""
    leaf, chain = _parse_chain(chain_pem)
    _check_leaf(leaf, key_pem=key_pem, identity=identity, now=now)
    _check_issuer(leaf, chain, ca_path)
    return SignedCertificate(leaf.serial_number, leaf.not_valid_after_utc)


def _parse_chain(chain_pem: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CertificateRejected(f"not a PEM certificate chain: {exc}") from None
    return certs[0], certs[1:]


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_leaf(leaf: x509.Certificate, *, key_pem: bytes, identity: str, now: datetime) -> None:
    key = serialization.load_pem_private_key(key_pem, None)
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        raise CertificateRejected("certificate is not for the key of the pending request")
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != identity:
        raise CertificateRejected(f"certificate CN is not {identity!r}")
    if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
        raise CertificateRejected("certificate is not valid now")


def _check_issuer(
    leaf: x509.Certificate, chain: list[x509.Certificate], ca_path: Path | None
) -> None:
    if ca_path is None:
        raise CertificateRejected("no CA configured (ca_cert) to check the certificate against")
    anchors = x509.load_pem_x509_certificates(ca_path.read_bytes())
    issued = leaf
    for issuer in [*chain, None]:
        if any(_issued_by(issued, anchor) for anchor in anchors):
            return
        if issuer is None or not _issued_by(issued, issuer):
            break
        issued = issuer
    raise CertificateRejected("certificate is not issued by the trusted CA")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
