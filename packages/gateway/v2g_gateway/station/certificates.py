"""Renewal of the station's own client certificate (security profile 3, use case A02/A03):
a new key and a certificate signing request for SignCertificate, and the CertificateSigned
answer checked and installed where ``[station]`` ``client_cert``/``client_key`` point, so the
next connection's TLS handshake presents it.

The new key waits in the state directory (mode 0600) until its certificate arrives, so a
restart in between loses nothing. A certificate is installed only if it is for this key and
this identity, currently valid, and issued by the CA the station trusts (``ca_cert``); the key
and certificate files are then replaced one after the other (each atomically).

Time is an argument; the only I/O is the key and certificate files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from v2g_common.pki.authority import write_private_file
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.errors import StationError
from v2g_gateway.station.settings import StationSettings

__all__ = ["CertificateRejected", "CertificateRenewal", "expires_at"]

log = logging.getLogger(__name__)

_PENDING_KEY = "client-renewal.key"


class CertificateRejected(StationError):
    """A CertificateSigned the station will not install (``reason`` is for statusInfo)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def expires_at(cert_path: Path) -> datetime:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).not_valid_after_utc


@dataclass(slots=True)
class _Request:
    sent_at: datetime
    attempt: int


class CertificateRenewal:
    """When to ask for a new certificate, the request, and installing the answer."""

    def __init__(self, config: StationConfig, settings: StationSettings) -> None:
        self._config = config
        self._settings = settings
        self._pending_key = config.state_dir / _PENDING_KEY
        self._request: _Request | None = None

    @property
    def enabled(self) -> bool:
        """Only a security-profile-3 station has a client certificate to renew."""
        cfg = self._config
        return cfg.security_profile == 3 and cfg.client_cert is not None

    def due(self, *, now: datetime) -> bool:
        """Ask now? The certificate expires within ``certificate_renew_before_days`` and no
        request is waiting, or the last one went unanswered past its wait (doubling per
        attempt, at most ``cert_signing_repeat_times`` repeats)."""
        cfg = self._config
        if not self.enabled or cfg.certificate_renew_before_days <= 0:
            return False
        assert cfg.client_cert is not None
        remaining = expires_at(cfg.client_cert) - now
        if remaining > timedelta(days=cfg.certificate_renew_before_days):
            return False
        return self.retry_due(now=now)

    def retry_due(self, *, now: datetime) -> bool:
        request = self._request
        if request is None:
            return True
        s = self._settings
        if request.attempt > s.cert_signing_repeat_times:
            return False
        wait = timedelta(seconds=s.cert_signing_wait_minimum_s * 2 ** (request.attempt - 1))
        return now - request.sent_at >= wait

    def signing_request(self, *, now: datetime) -> str:
        """A PEM CSR (CN = identity, O = organization) for the pending key, made if needed."""
        key = self._load_or_create_key()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self._config.organization_name),
                x509.NameAttribute(NameOID.COMMON_NAME, self._config.identity),
            ]
        )
        csr = (
            x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        )
        attempt = 1 if self._request is None else self._request.attempt + 1
        self._request = _Request(sent_at=now, attempt=attempt)
        return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def _load_or_create_key(self) -> ec.EllipticCurvePrivateKey:
        if self._pending_key.exists():
            key = serialization.load_pem_private_key(self._pending_key.read_bytes(), None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return key
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private_file(self._pending_key, pem, force=True)
        return key

    def install(self, chain_pem: str, *, now: datetime) -> x509.Certificate:
        """Check a CertificateSigned chain and install it; :class:`CertificateRejected`."""
        cfg = self._config
        if cfg.client_cert is None or cfg.client_key is None or not self._pending_key.exists():
            raise CertificateRejected("no certificate signing request is pending")
        leaf, chain = _parse_chain(chain_pem)
        key_pem = self._pending_key.read_bytes()
        _check_leaf(leaf, key_pem=key_pem, identity=cfg.identity, now=now)
        _check_issuer(leaf, chain, cfg.ca_cert)
        write_private_file(cfg.client_key, key_pem, force=True)
        write_private_file(cfg.client_cert, chain_pem.encode("ascii"), force=True)
        self._pending_key.unlink()
        self._request = None
        log.info(
            "installed a new client certificate (serial %x, valid until %s)",
            leaf.serial_number,
            leaf.not_valid_after_utc.isoformat(),
        )
        return leaf


def _parse_chain(chain_pem: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CertificateRejected(f"not a PEM certificate chain: {exc}") from None
    return certs[0], certs[1:]


def _check_leaf(leaf: x509.Certificate, *, key_pem: bytes, identity: str, now: datetime) -> None:
    key = serialization.load_pem_private_key(key_pem, None)
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
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
