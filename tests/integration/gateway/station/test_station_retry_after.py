"""A CSMS that is saturated answers the handshake 503 with ``Retry-After``: the station's link
reads it from websockets' refusal (then waits at least that long, ``backoff_s``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

from v2g_common.ocpp21 import connect_to_csms
from v2g_gateway.station.link import retry_after_s

pytestmark = pytest.mark.integration


def _refusing(retry_after: str | None) -> Any:
    def process_request(connection: Any, _request: Any) -> Any:
        response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "busy\n")
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        return response

    return process_request


@pytest.mark.parametrize(("header", "expected"), [("17", 17.0), (None, None), ("soon", None)])
async def test_a_503_retry_after_reaches_the_link(
    header: str | None, expected: float | None
) -> None:
    async def never(_ws: Any) -> None:
        raise AssertionError("refused handshakes open no connection")

    async with serve(never, "127.0.0.1", 0, process_request=_refusing(header)) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(InvalidStatus) as refused:
            await connect_to_csms(f"ws://127.0.0.1:{port}/ocpp", "CS-1", password="p" * 16)
    assert refused.value.response.status_code == 503
    assert retry_after_s(refused.value) == expected
    assert retry_after_s(OSError("refused")) is None
