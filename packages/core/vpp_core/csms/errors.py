"""Errors of the CSMS package (the adapter's OCPP errors pass through unchanged)."""

from __future__ import annotations

__all__ = ["CertificateRefused", "CsmsError", "SigningCaUnusable", "StationOffline"]


class CsmsError(Exception):
    """Base of the CSMS's own errors."""


class StationOffline(CsmsError):
    """A command for a station that has no open connection (nothing was sent)."""

    def __init__(self, station_id: str) -> None:
        self.station_id = station_id
        super().__init__(f"station {station_id!r} is not connected")


class CertificateRefused(CsmsError):
    """A station's certificate signing request this CSMS will not sign."""


class SigningCaUnusable(CsmsError):
    """``[csms] ca_cert_file``/``ca_key_file`` are set but cannot be loaded: a configuration
    error (the core does not start; ``keys`` names the settings)."""

    keys = "csms.ca_cert_file / csms.ca_key_file"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{self.keys}: {reason}")
