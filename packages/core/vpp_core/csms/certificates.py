"""Station client certificates for security profile 3: signing renewals (A02/A03
SignCertificate -> CertificateSigned) with the project's CA, and the handshake check that
refuses revoked and superseded certificates.

Design (docs/ocpp-conformance.md, "Certificates"):

* **Issued**: a SignCertificate whose CSR is valid, names the station's identity as CN and
  holds an accepted key is signed (``[csms] ca_cert_file``/``ca_key_file``); the certificate
  is recorded (serial, station, expiry, ``issued_at``).
* **Superseded on first use**: when a station first connects with a certificate this CSMS
  issued, every older certificate of that station is revoked (reason ``superseded``): the
  ones it issued before, and the one the station presented on its previous connection
  (e.g. the factory/provisioned certificate, which the CSMS never issued). From then on the
  station is *pinned*: a certificate for its identity that is not one this CSMS issued at or
  after the pinned one is refused even if nobody listed its serial.
* **Revoked by hand**: ``vpp-core certificates revoke <serial> --station <id>``.
* The handshake refuses a revoked serial, a certificate recorded for another station, and a
  certificate older than the station's pin, with HTTP 403 before any OCPP message.

Revocations are kept in the fleet database (``station_certificates``), loaded at start and
re-read while running (the CLI's). The check is in memory: a dictionary lookup per handshake.
Pure apart from signing; time is an argument.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from vpp_core.csms.errors import CertificateRefused
from vpp_core.fleet.equipment import CertificateRecord

if TYPE_CHECKING:  # the CA tooling (cryptography) is loaded only where the core signs
    from v2g_common.pki import CertificateAuthority

__all__ = ["PeerCertificate", "SigningRefusal", "StationCertificates", "serial_hex"]

SUPERSEDED = "superseded"


def serial_hex(serial: int) -> str:
    return format(serial, "x")


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """What the TLS handshake verified about a station's client certificate."""

    serial: str
    not_after: datetime | None

    @classmethod
    def from_peercert(cls, peercert: dict[str, object] | None) -> PeerCertificate | None:
        """From ``SSLSocket.getpeercert()`` (None without a verified certificate)."""
        if not peercert or "serialNumber" not in peercert:
            return None
        serial = serial_hex(int(str(peercert["serialNumber"]), 16))
        not_after = peercert.get("notAfter")
        expires = (
            datetime.fromtimestamp(ssl.cert_time_to_seconds(str(not_after)), UTC)
            if not_after
            else None
        )
        return cls(serial, expires)


@dataclass(frozen=True, slots=True)
class SigningRefusal:
    """Why a SignCertificate is Rejected: ``reason_code`` for its statusInfo, and the text."""

    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Pin:
    serial: str
    issued_at: datetime


def _kept(known: CertificateRecord, given: CertificateRecord) -> CertificateRecord:
    """``given`` with the revocation and first use ``known`` has and it lacks."""
    if given.revoked_at is None and known.revoked_at is not None:
        given = replace(
            given, revoked_at=known.revoked_at, revocation_reason=known.revocation_reason
        )
    if given.first_used_at is None and known.first_used_at is not None:
        given = replace(given, first_used_at=known.first_used_at)
    return given


class StationCertificates:
    """Issued and revoked station certificates, and who is pinned to which."""

    def __init__(
        self,
        authority: CertificateAuthority | None = None,
        *,
        valid_days: int = 365,
        renew_before_days: float = 30.0,
    ) -> None:
        self._authority = authority
        self._valid_days = valid_days
        self._renew_before = timedelta(days=renew_before_days)
        self._records: dict[str, CertificateRecord] = {}
        self._pins: dict[str, _Pin] = {}
        self._last_seen: dict[str, PeerCertificate] = {}

    @property
    def can_sign(self) -> bool:
        return self._authority is not None

    def update(self, records: Iterable[CertificateRecord]) -> None:
        """Load or refresh records (from the database). A revocation or first use known here
        is kept when a row read back does not have it yet (its write may be in flight or
        have failed): neither is ever undone."""
        for given in records:
            known = self._records.get(given.serial)
            record = given if known is None else _kept(known, given)
            self._records[record.serial] = record
            if record.issued_at is not None and record.first_used_at is not None:
                self._pin(record)

    def _pin(self, record: CertificateRecord) -> None:
        assert record.issued_at is not None
        pin = self._pins.get(record.station_id)
        if pin is None or pin.issued_at <= record.issued_at:
            self._pins[record.station_id] = _Pin(record.serial, record.issued_at)

    def record(self, serial: str) -> CertificateRecord | None:
        return self._records.get(serial)

    # -- the handshake --------------------------------------------------------------------
    def refusal(self, identity: str, peer: PeerCertificate) -> str | None:
        """Why a TLS client certificate (CN = ``identity``) is refused; None if it is not."""
        record = self._records.get(peer.serial)
        if record is not None and record.revoked_at is not None:
            return f"certificate {peer.serial} revoked ({record.revocation_reason})"
        if record is not None and record.station_id != identity:
            return f"certificate {peer.serial} belongs to {record.station_id!r}"
        pin = self._pins.get(identity)
        if pin is None or peer.serial == pin.serial:
            return None
        if record is None or record.issued_at is None or record.issued_at < pin.issued_at:
            return f"certificate {peer.serial} superseded by {pin.serial}"
        return None

    def connected(
        self, identity: str, peer: PeerCertificate, *, now: datetime
    ) -> list[CertificateRecord]:
        """A station connected with ``peer``: on the first use of a certificate this CSMS
        issued, revoke the station's older ones. Returns the records to persist."""
        previous = self._last_seen.get(identity)
        self._last_seen[identity] = peer
        record = self._records.get(peer.serial)
        if record is None or record.issued_at is None or record.first_used_at is not None:
            return []
        changed = [replace(record, first_used_at=now)]
        changed.extend(
            replace(other, revoked_at=now, revocation_reason=SUPERSEDED)
            for other in self._records.values()
            if other.station_id == identity
            and other.serial != peer.serial
            and other.revoked_at is None
            and (other.issued_at is None or other.issued_at <= record.issued_at)
        )
        if previous is not None and previous.serial not in self._records:
            changed.append(
                CertificateRecord(
                    serial=previous.serial,
                    station_id=identity,
                    not_after=previous.not_after,
                    revoked_at=now,
                    revocation_reason=SUPERSEDED,
                )
            )
        self.update(changed)
        return changed

    def revoke(
        self, serial: str, station_id: str, *, reason: str, now: datetime
    ) -> CertificateRecord:
        """Revoke a serial by hand (whether or not this CSMS issued it)."""
        known = self._records.get(serial)
        record = (
            replace(known, revoked_at=now, revocation_reason=reason)
            if known is not None
            else CertificateRecord(serial, station_id, revoked_at=now, revocation_reason=reason)
        )
        self.update([record])
        return record

    def renewal_due(self, peer: PeerCertificate | None, *, now: datetime) -> bool:
        """Trigger a renewal? The certificate expires within ``renew_before_days``."""
        if peer is None or peer.not_after is None or self._renew_before <= timedelta(0):
            return False
        return self.can_sign and peer.not_after - now <= self._renew_before

    # -- signing --------------------------------------------------------------------------
    def refuse_request(
        self, identity: str, certificate_type: str | None, csr_pem: str
    ) -> SigningRefusal | None:
        """Why a SignCertificate is refused (answered Rejected at once, nothing signed)."""
        if self._authority is None:
            return SigningRefusal("NotSupported", "this CSMS has no signing CA configured")
        if certificate_type not in (None, "ChargingStationCertificate"):
            return SigningRefusal(
                "NotSupported", f"{certificate_type} certificates are not issued here"
            )
        from v2g_common.pki import PkiError

        try:
            self._authority.checked_key(csr_pem, identity=identity)
        except PkiError as exc:
            return SigningRefusal("InvalidCSR", str(exc))
        return None

    def sign(self, identity: str, csr_pem: str, *, now: datetime) -> tuple[str, CertificateRecord]:
        """(PEM certificate chain, record) for a station's CSR; raises
        :class:`CertificateRefused`."""
        from cryptography.hazmat.primitives import serialization

        from v2g_common.pki import PkiError

        if self._authority is None:
            raise CertificateRefused("no signing CA configured")
        try:
            cert = self._authority.sign_csr(
                csr_pem, identity=identity, valid_days=self._valid_days, now=now
            )
        except PkiError as exc:
            raise CertificateRefused(str(exc)) from None
        record = CertificateRecord(
            serial=serial_hex(cert.serial_number),
            station_id=identity,
            not_after=cert.not_valid_after_utc,
            issued_at=now,
        )
        self.update([record])
        return cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), record
