"""The supervisor's channel: what reaches the control process, byte for byte."""

from __future__ import annotations

import asyncio
import socket

import pytest

from v2g_gateway.control.channel import ControlChannel, SetpointLease
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.wire import (
    CONTACT,
    EV_LIMITS,
    LEASE,
    PAIR_STRUCT,
    SETTINGS,
    SINGLE_STRUCT,
    SNAPSHOT_STRUCT,
    encode_snapshot_into,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def received(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536, socket.MSG_DONTWAIT))
        except BlockingIOError:
            return out


def snapshot_bytes(cycles: float) -> bytes:
    buffer = bytearray(SNAPSHOT_STRUCT.size)
    values = [0.0] * 20
    values[9] = -1.0
    values[18] = cycles
    encode_snapshot_into(buffer, tuple(values))
    return bytes(buffer)


async def test_contacts_are_coalesced_but_the_newest_always_arrives() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    clock = FakeClock()
    async with ControlChannel(ours, clock=clock) as channel:
        channel.mark_csms_contact()
        clock.now += 0.005
        channel.mark_csms_contact()  # within the coalescing window: held back
        clock.now += 0.005
        channel.mark_csms_contact()
        assert [SINGLE_STRUCT.unpack(m) for m in received(theirs)] == [(CONTACT, 100.0)]
        theirs.send(snapshot_bytes(1))  # the loop reports: the pending contact goes out
        await channel.wait_snapshot(lambda s: s.cycles == 1, timeout_s=2)
        assert [SINGLE_STRUCT.unpack(m) for m in received(theirs)] == [(CONTACT, clock.now)]


async def test_commands_on_the_wire() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    async with ControlChannel(ours) as channel:
        channel.grant_lease(SetpointLease(-2500.0, 7.5))
        channel.set_ev_limits(max_charge_w=7400.0, max_discharge_w=5000.0)
        channel.reload_settings(ControlSection(ramp_w_per_s=500.0))
        lease, limits, settings = received(theirs)
    assert PAIR_STRUCT.unpack(lease) == (LEASE, -2500.0, 7.5)
    assert PAIR_STRUCT.unpack(limits) == (EV_LIMITS, 7400.0, 5000.0)
    assert settings[0] == SETTINGS
    assert ControlSection.model_validate_json(settings[1:]).ramp_w_per_s == 500.0


@pytest.mark.parametrize(
    ("power_w", "valid_for_s"), [(float("nan"), 1.0), (1.0, -1.0), (1.0, float("inf"))]
)
def test_leases_that_could_never_expire_or_mean_nothing_are_refused(
    power_w: float, valid_for_s: float
) -> None:
    with pytest.raises(ValueError, match="invalid lease"):
        SetpointLease(power_w, valid_for_s)


async def test_a_vanished_control_process_is_noticed() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    async with ControlChannel(ours) as channel:
        theirs.close()
        await asyncio.wait_for(channel.wait_closed(), timeout=2)
        channel.grant_lease(SetpointLease(1000.0, 1.0))  # dropped, not raised
        assert channel.dropped_sends == 1
