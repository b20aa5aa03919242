"""The ``ocpp`` package's OCPP 2.1 request and response dataclasses (``call``,
``call_result``), for code outside this adapter: ``ocpp`` is pinned exactly and imported
nowhere else (tests/unit/test_import_boundaries.py keeps it so)."""

from __future__ import annotations

from ocpp.v21 import call, call_result

__all__ = ["call", "call_result"]
