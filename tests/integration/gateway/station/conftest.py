"""Fixtures for the station's integration tests: a raw-websockets CSMS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.doubles.raw_csms import RawCsms
from tests.doubles.station_setup import PASSWORD


@pytest.fixture
async def csms() -> AsyncIterator[RawCsms]:
    async with RawCsms(passwords={"CS-0001": PASSWORD}) as server:
        yield server
