"""Renewal of the station's own client certificate (security profile 3, use case A02/A03):
when to ask (the certificate expires within ``certificate_renew_before_days``, or the CSMS
asks), the SignCertificate request, and installing the CertificateSigned answer where
``[station]`` ``client_cert``/``client_key`` point, so the next connection's TLS handshake
presents it.

The new key waits in the state directory (mode 0600) until its certificate arrives, so a
restart in between loses nothing. A certificate is installed only if it is for this key and
this identity, currently valid, and issued by the CA the station trusts (``ca_cert``). The
accepted chain is first written beside the pending key; then the key and certificate files are
replaced one after the other (each atomically), and the two pending files removed. A crash
between the two replacements would leave a key that does not match the certificate — a
station that can never connect again — so :meth:`CertificateRenewal.finish_interrupted_install`
(at start, before the first connection) completes an install whose chain was written.

The cryptography lives in :mod:`.certificate_crypto`, imported on first use: a charger has
``cryptography`` only with ``v2g-gateway[certificate-renewal]``; without it renewal is
unavailable (logged once) and everything else works. Time is an argument.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

from v2g_common.pki.files import write_private_file
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.errors import CertificateRejected
from v2g_gateway.station.settings import StationSettings

__all__ = ["CertificateRejected", "CertificateRenewal"]

log = logging.getLogger(__name__)

_PENDING_KEY = "client-renewal.key"
_PENDING_CHAIN = "client-renewal.pem"


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
        self._pending_chain = config.state_dir / _PENDING_CHAIN
        self._request: _Request | None = None
        self._crypto: ModuleType | None = None
        self._unavailable = False

    @property
    def enabled(self) -> bool:
        """Only a security-profile-3 station has a client certificate to renew, and only
        with ``cryptography`` installed."""
        cfg = self._config
        if cfg.security_profile != 3 or cfg.client_cert is None:
            return False
        return self._crypto_module() is not None

    def _crypto_module(self) -> ModuleType | None:
        if self._crypto is None and not self._unavailable:
            try:
                self._crypto = importlib.import_module("v2g_gateway.station.certificate_crypto")
            except ImportError as exc:
                self._unavailable = True
                log.warning(
                    "certificate renewal unavailable (install v2g-gateway[certificate-renewal]):"
                    " %s",
                    exc,
                )
        return self._crypto

    def due(self, *, now: datetime) -> bool:
        """Ask now? The certificate expires within ``certificate_renew_before_days`` and no
        request is waiting, or the last one went unanswered past its wait (doubling per
        attempt, at most ``cert_signing_repeat_times`` repeats)."""
        cfg = self._config
        if cfg.certificate_renew_before_days <= 0 or not self.enabled:
            return False
        assert cfg.client_cert is not None
        assert self._crypto is not None
        remaining = self._crypto.expires_at(cfg.client_cert) - now
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
        crypto = self._require_crypto()
        if not self._pending_key.exists():
            write_private_file(self._pending_key, crypto.new_key_pem(), force=True)
        csr: str = crypto.signing_request(
            self._pending_key.read_bytes(),
            identity=self._config.identity,
            organization=self._config.organization_name,
        )
        attempt = 1 if self._request is None else self._request.attempt + 1
        self._request = _Request(sent_at=now, attempt=attempt)
        return csr

    def install(self, chain_pem: str, *, now: datetime) -> None:
        """Check a CertificateSigned chain and install it; :class:`CertificateRejected`."""
        cfg = self._config
        if cfg.client_cert is None or cfg.client_key is None or not self._pending_key.exists():
            raise CertificateRejected("no certificate signing request is pending")
        crypto = self._require_crypto()
        key_pem = self._pending_key.read_bytes()
        signed = crypto.check_chain(
            chain_pem, key_pem=key_pem, identity=cfg.identity, ca_path=cfg.ca_cert, now=now
        )
        write_private_file(self._pending_chain, chain_pem.encode("ascii"), force=True)
        self._replace_client_files()
        self._request = None
        log.info(
            "installed a new client certificate (serial %x, valid until %s)",
            signed.serial,
            signed.not_after.isoformat(),
        )

    def finish_interrupted_install(self) -> bool:
        """Complete an install a crash cut short (its chain was accepted and written, the
        client files may be half replaced). Needs no ``cryptography``. True if one was."""
        cfg = self._config
        if not self._pending_chain.exists():
            # Cut short after the chain went: the pending key is the installed one; a later
            # renewal must not reuse it.
            key = self._pending_key
            if key.exists() and key.read_bytes() == _read_or_empty(cfg.client_key):
                key.unlink()
            return False
        if not self._pending_key.exists():  # cannot happen in the order we write; be safe
            self._pending_chain.unlink()
            return False
        self._replace_client_files()
        log.warning("finished installing the client certificate a restart interrupted")
        return True

    def _replace_client_files(self) -> None:
        """Pending key and chain -> ``client_key``/``client_cert``; then the pending files go
        (chain first: while it exists, the install is redone from the start)."""
        cfg = self._config
        assert cfg.client_key is not None
        assert cfg.client_cert is not None
        write_private_file(cfg.client_key, self._pending_key.read_bytes(), force=True)
        write_private_file(cfg.client_cert, self._pending_chain.read_bytes(), force=True)
        self._pending_chain.unlink()
        self._pending_key.unlink()

    def _require_crypto(self) -> ModuleType:
        crypto = self._crypto_module()
        if crypto is None:
            raise CertificateRejected("certificate renewal is not installed on this station")
        return crypto


def _read_or_empty(path: Path | None) -> bytes:
    if path is None:
        return b""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
