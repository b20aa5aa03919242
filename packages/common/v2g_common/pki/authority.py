"""A small certificate authority on ``cryptography`` (EC P-256, SHA-256)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from v2g_common.pki.files import write_private_file

__all__ = ["CertificateAuthority", "IssuedCertificate", "PkiError", "check_identity"]

#: OCPP 2.x limits a charging station identity to 48 characters, without ':' (it is part of
#: the URL path and of the Basic-auth user name).
MAX_IDENTITY_LEN = 48


class PkiError(Exception):
    """A certificate could not be created, written or loaded."""


def check_identity(identity: str) -> str:
    """Return ``identity`` if it can be a station/site identity (CN, URL path, MQTT user)."""
    if not identity or len(identity) > MAX_IDENTITY_LEN:
        raise PkiError(f"identity {identity!r}: must be 1..{MAX_IDENTITY_LEN} characters")
    bad = set(identity) & set(':/#+ "\\')
    if bad or not identity.isprintable():
        raise PkiError(f"identity {identity!r}: contains forbidden characters {sorted(bad)}")
    return identity


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate with its private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def common_name(self) -> str:
        attrs = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value)

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, cert_path: Path, key_path: Path, *, force: bool = False) -> None:
        """Write both files with mode 0600; refuse to overwrite unless ``force``."""
        try:
            write_private_file(key_path, self.key_pem(), force=force)
            write_private_file(cert_path, self.cert_pem(), force=force)
        except FileExistsError as exc:
            raise PkiError(str(exc)) from None

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> IssuedCertificate:
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise PkiError(f"cannot load {cert_path} / {key_path}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{key_path}: expected an EC private key")
        return cls(cert, key)


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class CertificateAuthority:
    """Issues server and client certificates signed by one root."""

    def __init__(self, root: IssuedCertificate, *, organization: str = "V2G VPP") -> None:
        self.root = root
        self.organization = organization

    @classmethod
    def create(
        cls,
        *,
        common_name: str = "V2G VPP Root CA",
        valid_days: int = 3650,
        organization: str = "V2G VPP",
        now: dt.datetime | None = None,
    ) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        start = now or dt.datetime.now(dt.UTC)
        name = _name(common_name, organization)
        builder = (
            _base_builder(name, name, key.public_key(), start, valid_days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        return cls(
            IssuedCertificate(builder.sign(key, hashes.SHA256()), key), organization=organization
        )

    def issue_server(
        self,
        common_name: str,
        *,
        dns_names: list[str],
        ip_addresses: list[str],
        valid_days: int = 825,
        now: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """A TLS server certificate; clients verify it by its SAN entries."""
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        return self._issue(common_name, ExtendedKeyUsageOID.SERVER_AUTH, sans, valid_days, now)

    def issue_client(
        self, identity: str, *, valid_days: int = 825, now: dt.datetime | None = None
    ) -> IssuedCertificate:
        """A TLS client certificate whose CN is the station identity or site id."""
        check_identity(identity)
        return self._issue(identity, ExtendedKeyUsageOID.CLIENT_AUTH, [], valid_days, now)

    @staticmethod
    def checked_key(
        csr_pem: str | bytes, *, identity: str
    ) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        """The public key of a PEM certificate signing request this CA would sign for
        ``identity``. Raises :class:`PkiError` for a request that is not PEM, whose signature
        does not verify, whose CN is not ``identity`` or whose key is not EC P-256/P-384 or
        RSA >= 2048 bits."""
        check_identity(identity)
        try:
            data = csr_pem.encode("ascii") if isinstance(csr_pem, str) else csr_pem
            csr = x509.load_pem_x509_csr(data)
        except (ValueError, UnicodeEncodeError) as exc:
            raise PkiError(f"not a PEM certificate signing request: {exc}") from None
        if not csr.is_signature_valid:
            raise PkiError("the signing request's signature does not verify")
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names or names[0].value != identity:
            raise PkiError(f"the signing request's CN is not {identity!r}")
        return _accepted_key(csr.public_key())

    def sign_csr(
        self,
        csr_pem: str | bytes,
        *,
        identity: str,
        valid_days: int = 825,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """A client certificate for the key of a PEM certificate signing request, with CN =
        ``identity`` (whatever the request's subject says besides; it must name the same CN).

        Raises :class:`PkiError` as :meth:`checked_key` does.
        """
        public_key = self.checked_key(csr_pem, identity=identity)
        start = now or dt.datetime.now(dt.UTC)
        builder = (
            _base_builder(
                _name(identity, self.organization),
                self.root.certificate.subject,
                public_key,
                start,
                valid_days,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.root.private_key.public_key()
                ),
                critical=False,
            )
        )
        return builder.sign(self.root.private_key, hashes.SHA256())

    def _issue(
        self,
        common_name: str,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName],
        valid_days: int,
        now: dt.datetime | None,
    ) -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        start = now or dt.datetime.now(dt.UTC)
        builder = (
            _base_builder(
                _name(common_name, self.organization),
                self.root.certificate.subject,
                key.public_key(),
                start,
                valid_days,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.root.private_key.public_key()
                ),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return IssuedCertificate(builder.sign(self.root.private_key, hashes.SHA256()), key)


def _accepted_key(public_key: object) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """The key of a signing request if we sign for it: EC P-256/P-384, RSA >= 2048 bits."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1 | ec.SECP384R1):
            raise PkiError(f"EC curve {public_key.curve.name} is not accepted (P-256, P-384)")
        return public_key
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise PkiError(f"RSA key of {public_key.key_size} bits is too short (>= 2048)")
        return public_key
    raise PkiError(f"{type(public_key).__name__} keys are not accepted (EC or RSA)")


def _base_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    start: dt.datetime,
    valid_days: int,
) -> x509.CertificateBuilder:
    # Back-date by an hour so a controller whose clock lags slightly still accepts it.
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(hours=1))
        .not_valid_after(start + dt.timedelta(days=valid_days))
    )
