"""NullModem: two real tty paths bridged, with seeded faults and a pullable cable."""

from __future__ import annotations

import os
import select

import pytest

from v2g_sim.serial_link import LinkFaults, NullModem


def _read(fd: int, n: int, timeout_s: float = 2.0) -> bytes:
    data = b""
    while len(data) < n:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            break
        data += os.read(fd, n - len(data))
    return data


@pytest.fixture
def ends():  # type: ignore[no-untyped-def]
    with NullModem(seed=3) as link:
        a = os.open(link.port_a, os.O_RDWR | os.O_NOCTTY)
        b = os.open(link.port_b, os.O_RDWR | os.O_NOCTTY)
        yield link, a, b
        os.close(a)
        os.close(b)


def test_bytes_cross_both_ways(ends) -> None:  # type: ignore[no-untyped-def]
    _, a, b = ends
    os.write(a, b"\x01\x03\x00\x00\xff")
    assert _read(b, 5) == b"\x01\x03\x00\x00\xff"
    os.write(b, bytes(range(256)))
    assert _read(a, 256) == bytes(range(256))


def test_disconnected_drops_everything_then_recovers(ends) -> None:  # type: ignore[no-untyped-def]
    link, a, b = ends
    with link.disconnected():
        os.write(a, b"lost")
        assert _read(b, 4, timeout_s=0.3) == b""
    os.write(a, b"back")
    assert _read(b, 4) == b"back"


def test_corruption_flips_bits_in_one_direction_only(ends) -> None:  # type: ignore[no-untyped-def]
    link, a, b = ends
    link.set_faults(LinkFaults(corrupt_rate=1.0, direction="a_to_b"))
    os.write(a, b"\x00" * 8)
    got = _read(b, 8)
    assert len(got) == 8
    assert got != b"\x00" * 8
    os.write(b, b"\x00" * 8)
    assert _read(a, 8) == b"\x00" * 8
    assert link.chunks_corrupted >= 1


def test_drop_rate_one_drops_all(ends) -> None:  # type: ignore[no-untyped-def]
    link, a, b = ends
    link.set_faults(LinkFaults(drop_rate=1.0))
    os.write(a, b"gone")
    assert _read(b, 4, timeout_s=0.3) == b""
    assert link.chunks_dropped >= 1


def test_close_is_idempotent_and_removes_the_ttys() -> None:
    link = NullModem()
    path = link.port_a
    assert os.path.exists(path)
    link.close()
    link.close()
    assert not os.path.exists(path) or path != link.port_b
