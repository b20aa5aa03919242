"""URL, Basic auth and subprotocol choice (pure parts; the socket side is an integration test)."""

from __future__ import annotations

import base64

import pytest
from websockets.exceptions import NegotiationError

from v2g_common.ocpp21 import (
    SUBPROTOCOLS,
    InvalidIdentity,
    basic_auth_header,
    select_subprotocol,
    server_subprotocols,
    station_url,
)


@pytest.mark.parametrize(
    ("base", "identity", "url"),
    [
        ("wss://csms.example/ocpp", "CS-0001", "wss://csms.example/ocpp/CS-0001"),
        ("wss://csms.example/ocpp/", "CS-0001", "wss://csms.example/ocpp/CS-0001"),
        ("ws://127.0.0.1:9000", "site a/7#?", "ws://127.0.0.1:9000/site%20a%2F7%23%3F"),
        ("ws://h", "Zähler", "ws://h/Z%C3%A4hler"),
    ],
)
def test_station_url_encodes_the_identity(base: str, identity: str, url: str) -> None:
    assert station_url(base, identity) == url


@pytest.mark.parametrize("identity", ["", "a:b", "x" * 49])
def test_bad_identities_are_refused(identity: str) -> None:
    with pytest.raises(InvalidIdentity):
        station_url("ws://h", identity)
    with pytest.raises(InvalidIdentity):
        basic_auth_header(identity, "0123456789abcdef")


def test_basic_auth_user_is_the_identity() -> None:
    header = basic_auth_header("CS-0001", "s3cret:with:colons")
    scheme, token = header.split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == "CS-0001:s3cret:with:colons"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp2.0.1", "ocpp2.1"], "ocpp2.1"),  # our preference wins
        (["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp2.1"], "ocpp2.1"),
    ],
)
def test_select_subprotocol_prefers_21(offered: list[str], chosen: str) -> None:
    assert select_subprotocol(None, offered) == chosen


@pytest.mark.parametrize("offered", [[], ["ocpp1.6"], ["chat"]])
def test_select_subprotocol_refuses_without_an_ocpp_2_version(offered: list[str]) -> None:
    with pytest.raises(NegotiationError):
        select_subprotocol(None, offered)


def test_server_subprotocols() -> None:
    assert server_subprotocols() == list(SUBPROTOCOLS) == ["ocpp2.1", "ocpp2.0.1"]
    assert server_subprotocols(["ocpp2.1"]) == ["ocpp2.1"]
    with pytest.raises(ValueError, match="unsupported"):
        server_subprotocols(["ocpp1.6"])
