"""The supervisor <-> control byte format, the event-code list and the lateness statistics."""

from __future__ import annotations

import math

import pytest

from v2g_gateway.control.events import EVENT_CODES, EVENT_HELP, EventCode, index_of
from v2g_gateway.control.realtime import LatenessStats
from v2g_gateway.control.wire import (
    SNAPSHOT_STRUCT,
    decode_event,
    decode_snapshot,
    encode_event,
    encode_snapshot_into,
)


def test_snapshot_round_trip_keeps_units_unknowns_and_codes() -> None:
    buffer = bytearray(SNAPSHOT_STRUCT.size)
    trip = float(index_of(EventCode.SENSOR_MISMATCH))
    values = (
        12.5,
        -3000.0,
        -2800.0,
        math.nan,
        1.0,
        10.0,
        20.0,
        0.0,
        1.0,
        trip,
        3.5,
        -3000.0,
        50.01,
        math.nan,
        140.0,
        210.0,
        1200.0,
        2.0,
        77.0,
        0.0,
    )
    encode_snapshot_into(buffer, values)
    snap = decode_snapshot(buffer)
    assert snap.power_w == -3000.0
    assert snap.commanded_w == -2800.0
    assert snap.soc_pct is None
    assert snap.sensor_power_w is None
    assert snap.ev_connected
    assert not snap.contactor_closed
    assert snap.fail_safe
    assert snap.trip_code == "SENSOR_MISMATCH"
    assert (snap.overruns, snap.cycles) == (2, 77)
    assert snap.lateness_p99_us == 210.0


def test_event_round_trip() -> None:
    assert decode_event(encode_event(EventCode.GRID_FREQ_OUT_OF_RANGE, 3.25)) == (
        EventCode.GRID_FREQ_OUT_OF_RANGE,
        3.25,
    )


def test_event_codes_are_pinned_append_only_and_documented() -> None:
    # the wire numbers of existing codes never change: append new codes at the end
    assert EVENT_CODES[:3] == (
        EventCode.GROUND_FAULT,
        EventCode.OVER_TEMP,
        EventCode.DC_OVER_VOLTAGE,
    )
    assert index_of(EventCode.GRID_FREQ_OUT_OF_RANGE) == 6
    assert set(EVENT_HELP) == set(EventCode)
    for code in EventCode:
        assert code.value == code.name


@pytest.mark.parametrize("n", [1, 100, 1000])
def test_lateness_percentiles_from_the_histogram(n: int) -> None:
    stats = LatenessStats()
    for i in range(n):
        stats.record(i * 1e-6 * 10)  # 0, 10, 20 ... µs
    stats.record(-5e-6)  # early wake-ups count as 0
    stats.update_percentiles()
    values = sorted([0.0] + [i * 10.0 for i in range(n)])
    assert stats.max_us == pytest.approx(values[-1])
    assert stats.p50_us == pytest.approx(values[len(values) // 2], abs=10.0)
    assert stats.p99_us == pytest.approx(values[math.ceil(0.99 * len(values)) - 1], abs=10.0)
