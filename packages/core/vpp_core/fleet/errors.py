"""Errors of the fleet package."""

from __future__ import annotations

__all__ = [
    "FleetError",
    "MeterValueError",
    "RegistryError",
    "StoreError",
    "UnknownStationError",
]


class FleetError(Exception):
    """Base of every fleet error."""


class MeterValueError(FleetError, ValueError):
    """A meter value or timestamp that cannot be read."""


class StoreError(FleetError):
    """The database could not be opened, migrated, read or written."""


class RegistryError(FleetError):
    """A station registry operation that cannot be done (bad identity, weak password…)."""


class UnknownStationError(RegistryError, KeyError):
    """No station with that identity is registered."""
