"""Errors of the frequency services."""

from __future__ import annotations

__all__ = ["InvalidServiceError", "ServiceError", "ServiceNotFoundError", "ServiceStateError"]


class ServiceError(Exception):
    """Base of the frequency services' errors."""


class InvalidServiceError(ServiceError, ValueError):
    """A request that cannot be held as stated; ``reasons`` are (field, reason)."""

    def __init__(self, reasons: list[tuple[str, str]]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in reasons))


class ServiceNotFoundError(ServiceError, KeyError):
    """No service of that id."""


class ServiceStateError(ServiceError):
    """What was asked does not fit the service as it is (ended, or not of that product)."""
