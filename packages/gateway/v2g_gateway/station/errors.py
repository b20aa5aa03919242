"""Errors of the charging-station role."""

from __future__ import annotations

__all__ = ["CertificateRejected", "ProfileRejected", "StationError", "StationStateError"]


class StationError(Exception):
    """Base of the station's errors."""


class ProfileRejected(StationError):
    """A charging profile (or update of one) the station will not apply.

    ``reason_code`` goes on the wire as ``statusInfo.reasonCode`` (≤ 20 chars),
    ``detail`` as ``statusInfo.additionalInfo``.
    """

    def __init__(self, reason_code: str, detail: str) -> None:
        self.reason_code = reason_code[:20]
        self.detail = detail[:1024]
        super().__init__(f"{reason_code}: {detail}")


class StationStateError(StationError):
    """The station's on-disk state is unusable (corrupt database, wrong schema version)."""


class CertificateRejected(StationError):
    """A CertificateSigned the station will not install (``reason`` is for statusInfo)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
