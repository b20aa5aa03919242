"""The opening-phase bound (``vpp_core.csms.opening``): places, refusals, expiry, the log of
a storm; and the gated listener closing refused connections at accept."""

from __future__ import annotations

import logging
import select
import socket

import pytest

from vpp_core.csms.opening import OpeningGate, gated_listener


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _gate(limit: int = 4, clock: FakeClock | None = None) -> tuple[OpeningGate, list[int]]:
    refused: list[int] = []
    gate = OpeningGate(
        limit=limit,
        expire_after_s=10.0,
        clock=clock or FakeClock(),
        on_refused=lambda: refused.append(1),
    )
    return gate, refused


def test_beyond_the_limit_is_refused_and_a_decided_handshake_frees_its_place() -> None:
    gate, refused = _gate(limit=3)
    assert [gate.try_open(("10.0.0.1", port)) for port in range(5)] == [1, 1, 1, 0, 0]
    assert gate.opening == 3
    assert len(refused) == 2
    gate.decided(("10.0.0.1", 1))
    gate.decided(("10.0.0.1", 99))  # never opened (or already expired): nothing happens
    assert gate.opening == 2
    assert gate.try_open(("10.0.0.1", 5))


def test_a_connection_never_decided_frees_its_place_after_the_open_timeout() -> None:
    clock = FakeClock()
    gate, _ = _gate(limit=2, clock=clock)
    assert gate.try_open("a")
    clock.now += 6.0
    assert gate.try_open("b")
    assert not gate.try_open("c")
    clock.now += 4.0  # "a" is 10 s old: the listener has closed it
    assert gate.opening == 1
    assert gate.try_open("c")
    clock.now += 9.9
    assert gate.opening == 1  # "b" expired, "c" not yet


def test_a_storm_is_logged_when_it_starts_and_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    gate, refused = _gate(limit=4, clock=clock)
    with caplog.at_level(logging.WARNING, logger="vpp_core.csms.opening"):
        for port in range(4):
            gate.try_open(port)
        for port in range(100, 150):
            gate.try_open(port)
        assert len(caplog.records) == 1, "one line per storm, not one per refusal"
        assert "refusing new ones at accept" in caplog.text
        gate.decided(0)
        gate.decided(1)
        clock.now += 3.0
        assert gate.try_open(200)  # 2 opening, below half of 4: still the storm
        gate.decided(2)
        gate.decided(3)
        assert gate.try_open(201)
    assert len(caplog.records) == 2
    assert "50 refused at accept in 3.0 s" in caplog.records[1].getMessage()
    assert len(refused) == 50


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        OpeningGate(limit=limit, expire_after_s=10.0)


def test_the_listener_closes_refused_connections_before_any_byte_is_read() -> None:
    gate = OpeningGate(limit=1, expire_after_s=10.0)
    listener = gated_listener("127.0.0.1", 0, backlog=8, gate=gate)
    port = listener.getsockname()[1]
    first = socket.create_connection(("127.0.0.1", port))
    second = socket.create_connection(("127.0.0.1", port))
    try:
        second.sendall(b"\x16\x03\x01 a ClientHello")
        listener.setblocking(True)
        conn, peer = listener.accept()
        assert peer == first.getsockname()
        listener.setblocking(False)
        assert select.select([listener], [], [], 5.0)[0], "the second is queued"
        with pytest.raises(BlockingIOError):  # the second, refused, closed inside: none left
            listener.accept()
        assert gate.opening == 1
        second.settimeout(5.0)
        with pytest.raises(ConnectionResetError):  # RST: its data was never read
            second.recv(1)
        conn.close()
    finally:
        first.close()
        second.close()
        listener.close()
