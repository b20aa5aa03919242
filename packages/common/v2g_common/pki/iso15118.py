"""The ISO 15118 PKI of a charger's SECC: a V2G root, CPO Sub-CA 1 and 2, and the SECC's
leaf certificate (CN = the charger's identity), all ECDSA; and the EV side's trust anchor
(the V2G root).

The curve is secp256r1 with SHA-256: the ``iso15118`` library's SECC speaks TLS 1.2 (TLS 1.3
only with mutual authentication, which needs OEM certificates in every EV) and pins the key
exchange group to prime256v1 (``set_ecdh_curve``), and OpenSSL then accepts an ECDSA server
certificate only on that curve. -20's secp521r1 certificates fail that handshake with
"no shared cipher" (checked against iso15118 0.31.2).

The files are laid out and named as the ``iso15118`` library reads them from its
``PKI_PATH`` (``iso15118.shared.security.CertPath``/``KeyPath``/``KeyPasswordPath``)::

    <dir>/iso15118/ca/            v2gRootCA, cpoSubCA1, cpoSubCA2 (.pem + .key; the
                                  technician's, never copied to a charger)
    <dir>/iso15118/secc/<id>/     the charger's PKI_PATH ([ev_link.iso15118] pki_dir):
        iso15118_2/certs/         seccLeafCert.pem|.der, cpoSubCA2Cert.der, cpoSubCA1Cert.der,
                                  v2gRootCACert.pem|.der, cpoCertChain.pem (leaf, Sub-CA 2,
                                  Sub-CA 1: what the SECC's TLS server presents)
        iso15118_2/private_keys/  seccLeaf.key (PKCS#8, encrypted), seccLeafPassword.txt
    <dir>/iso15118/evcc/          an EVCC's PKI_PATH: iso15118_2/certs/v2gRootCACert.pem
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from v2g_common.pki.authority import IssuedCertificate, PkiError, _base_builder, check_identity
from v2g_common.pki.files import write_private_file

__all__ = ["Iso15118Layout", "Iso15118Pki", "provision_iso15118"]

#: ECDSA on secp256r1, SHA-256 (the module's docstring says why not secp521r1).
CURVE = ec.SECP256R1
HASH = hashes.SHA256
ORGANIZATION = "V2G VPP"


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str, *, domain: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(x509.NameOID.DOMAIN_COMPONENT, domain),
        ]
    )


def _issue(
    subject: x509.Name,
    issuer: IssuedCertificate | None,
    *,
    path_length: int | None,
    ca: bool,
    valid_days: int,
    now: dt.datetime,
) -> IssuedCertificate:
    """A certificate for a new key; self-signed when ``issuer`` is None."""
    key = ec.generate_private_key(CURVE())
    signer_key = issuer.private_key if issuer else key
    builder = (
        _base_builder(
            subject,
            issuer.certificate.subject if issuer else subject,
            key.public_key(),
            now,
            valid_days,
        )
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(_key_usage(ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), False
        )
    )
    return IssuedCertificate(builder.sign(signer_key, HASH()), key)


#: name -> (subject CN, domain, path length, days valid, issuer name)
_CAS: dict[str, tuple[str, str, int, int, str | None]] = {
    "v2gRootCA": ("V2G VPP V2G Root CA", "V2G", 2, 3650, None),
    "cpoSubCA1": ("V2G VPP CPO Sub-CA 1", "CPO", 1, 1460, "v2gRootCA"),
    "cpoSubCA2": ("V2G VPP CPO Sub-CA 2", "CPO", 0, 730, "cpoSubCA1"),
}


@dataclass(frozen=True)
class Iso15118Pki:
    """The V2G root, the CPO Sub-CAs and one SECC leaf."""

    root: IssuedCertificate
    sub_ca1: IssuedCertificate
    sub_ca2: IssuedCertificate
    secc: IssuedCertificate

    @classmethod
    def create(cls, secc_id: str, *, now: dt.datetime | None = None) -> Iso15118Pki:
        start = now or dt.datetime.now(dt.UTC)
        cas: dict[str, IssuedCertificate] = {}
        for name in _CAS:
            cas[name] = _issue_ca(name, cas, now=start)
        return cls.issue(cas, secc_id, now=start)

    @classmethod
    def issue(
        cls, cas: dict[str, IssuedCertificate], secc_id: str, *, now: dt.datetime | None = None
    ) -> Iso15118Pki:
        """A leaf for ``secc_id`` (its CN) under the CAs ``cas`` (named as in ``_CAS``)."""
        check_identity(secc_id)
        leaf = _issue(
            _name(secc_id, domain="CPO"),
            cas["cpoSubCA2"],
            path_length=None,
            ca=False,
            valid_days=365,
            now=now or dt.datetime.now(dt.UTC),
        )
        return cls(cas["v2gRootCA"], cas["cpoSubCA1"], cas["cpoSubCA2"], leaf)


def _issue_ca(
    name: str, issued: dict[str, IssuedCertificate], *, now: dt.datetime
) -> IssuedCertificate:
    common_name, domain, path_length, days, issuer = _CAS[name]
    return _issue(
        _name(common_name, domain=domain),
        issued[issuer] if issuer else None,
        path_length=path_length,
        ca=True,
        valid_days=days,
        now=now,
    )


@dataclass(frozen=True)
class Iso15118Layout:
    """Paths under ``<dir>/iso15118`` (see the module's docstring)."""

    root: Path

    @property
    def base(self) -> Path:
        return self.root / "iso15118"

    def ca_cert(self, name: str) -> Path:
        return self.base / "ca" / f"{name}.pem"

    def ca_key(self, name: str) -> Path:
        return self.base / "ca" / f"{name}.key"

    def secc_dir(self, secc_id: str) -> Path:
        """The SECC's ``PKI_PATH`` (``[ev_link.iso15118] pki_dir``)."""
        return self.base / "secc" / secc_id

    @property
    def evcc_dir(self) -> Path:
        """An EVCC's ``PKI_PATH``: the V2G root only."""
        return self.base / "evcc"


def _der(cert: IssuedCertificate) -> bytes:
    return cert.certificate.public_bytes(serialization.Encoding.DER)


def _write_secc(directory: Path, pki: Iso15118Pki, *, force: bool) -> None:
    certs = directory / "iso15118_2" / "certs"
    keys = directory / "iso15118_2" / "private_keys"
    password = secrets.token_urlsafe(24)
    encrypted_key = pki.secc.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    files = {
        certs / "seccLeafCert.pem": pki.secc.cert_pem(),
        certs / "seccLeafCert.der": _der(pki.secc),
        certs / "cpoSubCA2Cert.der": _der(pki.sub_ca2),
        certs / "cpoSubCA1Cert.der": _der(pki.sub_ca1),
        certs / "v2gRootCACert.pem": pki.root.cert_pem(),
        certs / "v2gRootCACert.der": _der(pki.root),
        certs / "cpoCertChain.pem": pki.secc.cert_pem()
        + pki.sub_ca2.cert_pem()
        + pki.sub_ca1.cert_pem(),
        keys / "seccLeaf.key": encrypted_key,
        keys / "seccLeafPassword.txt": password.encode() + b"\n",
    }
    for path, data in files.items():
        write_private_file(path, data, force=force)


def provision_iso15118(root: Path, secc_ids: list[str], *, force: bool = False) -> Iso15118Layout:
    """The V2G root and CPO Sub-CAs (created when missing, or all again with ``force``), an
    SECC leaf per id, and the EVCC's trust anchor. Existing files are never replaced unless
    ``force``."""
    layout = Iso15118Layout(root)
    for secc_id in secc_ids:
        check_identity(secc_id)
    cas = _load_or_create_cas(layout, force=force)
    try:
        write_private_file(
            layout.evcc_dir / "iso15118_2" / "certs" / "v2gRootCACert.pem",
            cas["v2gRootCA"].cert_pem(),
            force=True,
        )
        for secc_id in secc_ids:
            _write_secc(layout.secc_dir(secc_id), Iso15118Pki.issue(cas, secc_id), force=force)
    except FileExistsError as exc:
        raise PkiError(str(exc)) from None
    return layout


def _load_or_create_cas(layout: Iso15118Layout, *, force: bool) -> dict[str, IssuedCertificate]:
    cas: dict[str, IssuedCertificate] = {}
    renew = force or not layout.ca_cert("v2gRootCA").exists()
    now = dt.datetime.now(dt.UTC)
    for name in _CAS:
        cert, key = layout.ca_cert(name), layout.ca_key(name)
        if renew or not cert.exists():
            renew = True  # a new CA: every CA below it is new too
            cas[name] = _issue_ca(name, cas, now=now)
            cas[name].write(cert, key, force=True)
        else:
            cas[name] = IssuedCertificate.load(cert, key)
    return cas
