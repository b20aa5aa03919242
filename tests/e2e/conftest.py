"""Whole-system scenarios: the demo's embedded stack (PKI, TLS mosquitto, ``vpp-core run``
as a child process, fleet-host processes running our gateway code) at small scale."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
