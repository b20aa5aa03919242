"""LocalFrequency through the supervisor's channel and the real control loop (SEQPACKET pair,
in-memory stage whose grid frequency the test moves), and the lease's wire codec."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import pytest

from tests.unit.gateway.control.test_control_loop import FollowingSensor, MemoryStage, Relay
from v2g_gateway.control.channel import ControlChannel, SetpointLease
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.control.loop import ControlLoop
from v2g_gateway.control.ports import StageMeasurement
from v2g_gateway.control.wire import (
    FREQ_HEAD_STRUCT,
    FREQ_LEASE,
    FREQ_POINT_STRUCT,
    decode_freq_lease,
    encode_freq_lease,
)

CURVE = FreqWattCurve.from_points([(49.5, -6000.0), (49.9, 0.0), (50.1, 0.0), (50.5, 6000.0)])


@dataclass
class GridStage(MemoryStage):
    """The memory stage, reporting ``grid_freq_hz`` as its SunSpec Hz point."""

    grid_freq_hz: float = 50.0

    async def read_measurement(self) -> StageMeasurement:
        m = await super().read_measurement()
        return StageMeasurement(
            m.power_w, m.soc_pct, self.grid_freq_hz, 230.0, True, 1.0, 2.0, m.faults
        )


def test_frequency_lease_round_trips_through_the_wire() -> None:
    data = encode_freq_lease(-1500.0, 12.5, CURVE)
    assert data[0] == FREQ_LEASE
    assert len(data) == FREQ_HEAD_STRUCT.size + 4 * 16
    assert decode_freq_lease(data) == (-1500.0, 12.5, CURVE)


def with_points(data: bytes, points: list[tuple[float, float]]) -> bytes:
    """``data``'s header with another point count and points (what a bad peer could send)."""
    head = data[:4] + len(points).to_bytes(4, "little") + data[8 : FREQ_HEAD_STRUCT.size]
    return head + b"".join(FREQ_POINT_STRUCT.pack(*p) for p in points)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:10], "short frequency lease"),
        (lambda d: d[:-8], "4 points does not fit"),
        (lambda d: with_points(d, [(49.0 + i / 10, 0.0) for i in range(21)]), "2..20 points"),
        (lambda d: with_points(d, [(50.0, 0.0)]), "2..20 points"),
        (lambda d: with_points(d, [(50.0, 0.0), (49.0, 1.0)]), "ascending"),
    ],
)
def test_a_garbled_frequency_lease_is_refused(mangle: object, reason: str) -> None:
    data = encode_freq_lease(0.0, 10.0, CURVE)
    with pytest.raises(ValueError, match=reason):
        decode_freq_lease(mangle(data))  # type: ignore[operator]


async def test_the_loop_follows_the_measured_frequency_and_drops_it_with_a_plain_lease() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stage, relay = GridStage(), Relay()
    cfg = ControlSection(period_s=0.01, ramp_w_per_s=1000.0, freq_ramp_w_per_s=1e6)
    loop = ControlLoop(
        stage=stage, sensor=FollowingSensor(stage), contactor=relay, sock=b, settings=cfg
    )
    async with ControlChannel(a) as channel, asyncio.TaskGroup() as group:
        task = group.create_task(loop.run())
        channel.set_ev_limits(max_charge_w=11000.0, max_discharge_w=11000.0)
        channel.mark_csms_contact()
        channel.grant_lease(SetpointLease(0.0, 30.0, curve=CURVE))
        await channel.wait_snapshot(lambda s: s.contactor_closed, timeout_s=5)
        stage.grid_freq_hz = 49.7  # halfway down the under-frequency segment
        snap = await channel.wait_snapshot(lambda s: s.commanded_w < 0, timeout_s=5)
        assert snap.commanded_w == pytest.approx(-3000.0)  # module ramp: in one step
        assert snap.grid_freq_hz == 49.7
        stage.grid_freq_hz = 50.05  # inside the dead-band
        await channel.wait_snapshot(lambda s: s.commanded_w == 0.0, timeout_s=5)
        stage.grid_freq_hz = 49.5
        await channel.wait_snapshot(lambda s: s.commanded_w == pytest.approx(-6000.0), timeout_s=5)
        channel.grant_lease(SetpointLease(0.0, 30.0))  # CentralSetpoint again: curve gone
        snap = await channel.wait_snapshot(lambda s: s.commanded_w > -6000.0, timeout_s=5)
        # and the comfort ramp is back: at most 1 kW/s x two periods of credit per step
        assert snap.commanded_w <= -6000.0 + 1000.0 * 2 * cfg.period_s
        channel.request_stop()
        await asyncio.wait_for(task, timeout=10)
