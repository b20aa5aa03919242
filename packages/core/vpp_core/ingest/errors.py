"""Errors of the telemetry ingest."""

from __future__ import annotations

__all__ = ["IngestError", "TelemetryStoreError"]


class IngestError(Exception):
    """Base of the ingest's errors."""


class TelemetryStoreError(IngestError):
    """The regional-state store failed (database unreachable, schema too new ...)."""
