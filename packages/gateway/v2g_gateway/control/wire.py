"""The byte format between the supervisor and the control process (one SOCK_SEQPACKET pair).

Each datagram starts with a one-byte kind. Fixed-size messages use little-endian doubles so
the control loop can unpack them without building intermediate objects; the rare settings
reload carries the ``[control]`` section as JSON. Pure codecs: no I/O here.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from v2g_gateway.control.events import EventCode, code_from_index, index_of
from v2g_gateway.control.frequency import FreqWattCurve

__all__ = [
    "CONTACT",
    "EVENT",
    "EVENT_STRUCT",
    "EV_HOLD",
    "EV_LIMITS",
    "FREQ_LEASE",
    "LEASE",
    "MAX_DATAGRAM",
    "PAIR_STRUCT",
    "SETTINGS",
    "SINGLE_STRUCT",
    "SNAPSHOT",
    "SNAPSHOT_STRUCT",
    "STALL",
    "STOP",
    "ControlSnapshot",
    "decode_freq_lease",
    "decode_snapshot",
    "encode_freq_lease",
    "encode_snapshot_into",
]

# supervisor -> control
LEASE = 1  # PAIR: power_w, valid_for_s
CONTACT = 2  # SINGLE: supervisor's monotonic time of the CSMS exchange
EV_LIMITS = 3  # PAIR: max_charge_w, max_discharge_w (magnitudes)
SETTINGS = 4  # kind byte + ControlSection JSON
STALL = 5  # SINGLE: seconds to block the loop (test hook, see docs)
STOP = 6  # kind byte only: ramp to 0 W, open the contactor, exit 0
EV_HOLD = 8  # SINGLE: 1.0 = the EV's session holds the output open (ISO 15118: outside its
#              charge loop, EV_COMM_TIMEOUT), 0.0 = released
FREQ_LEASE = 7  # FREQ_HEAD (point count, baseline_w, valid_for_s) + count x (freq_hz, power_w)
# control -> supervisor
SNAPSHOT = 64
EVENT = 65

MAX_DATAGRAM = 65536

SINGLE_STRUCT = struct.Struct("<B7xd")
PAIR_STRUCT = struct.Struct("<B7xdd")
EVENT_STRUCT = struct.Struct("<B3xid")  # code index, control's monotonic time
SNAPSHOT_STRUCT = struct.Struct("<B7x20d")
FREQ_HEAD_STRUCT = struct.Struct("<B3xIdd")
FREQ_POINT_STRUCT = struct.Struct("<dd")


@dataclass(frozen=True, slots=True)
class ControlSnapshot:
    """The control loop's latest state as the supervisor sees it.

    ``monotonic_s`` is the control process's CLOCK_MONOTONIC at the end of the cycle (the
    same clock as the supervisor's ``time.monotonic()`` on Linux). ``soc_pct`` and
    ``sensor_power_w`` are ``None`` when unknown. ``cycles`` is 0 before the first cycle.
    """

    monotonic_s: float
    power_w: float
    commanded_w: float
    soc_pct: float | None
    ev_connected: bool
    energy_import_wh: float
    energy_export_wh: float
    contactor_closed: bool
    fail_safe: bool
    trip_code: str | None
    lease_remaining_s: float
    lease_power_w: float
    grid_freq_hz: float
    sensor_power_w: float | None
    lateness_p50_us: float
    lateness_p99_us: float
    lateness_max_us: float
    overruns: int
    cycles: int
    stopping: bool

    @property
    def tripped(self) -> bool:
        return self.trip_code is not None


#: What the supervisor shows before the control process's first snapshot.
NO_SNAPSHOT = ControlSnapshot(
    monotonic_s=-math.inf,
    power_w=0.0,
    commanded_w=0.0,
    soc_pct=None,
    ev_connected=False,
    energy_import_wh=0.0,
    energy_export_wh=0.0,
    contactor_closed=False,
    fail_safe=False,
    trip_code=None,
    lease_remaining_s=0.0,
    lease_power_w=0.0,
    grid_freq_hz=0.0,
    sensor_power_w=None,
    lateness_p50_us=0.0,
    lateness_p99_us=0.0,
    lateness_max_us=0.0,
    overruns=0,
    cycles=0,
    stopping=False,
)


def encode_snapshot_into(buffer: bytearray, values: tuple[float, ...]) -> None:
    """Pack the 20 snapshot values (order of :class:`ControlSnapshot`; booleans as 0/1, codes
    as indices, unknowns as NaN) into ``buffer``."""
    SNAPSHOT_STRUCT.pack_into(buffer, 0, SNAPSHOT, *values)


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


def decode_snapshot(data: bytes | memoryview) -> ControlSnapshot:
    v = SNAPSHOT_STRUCT.unpack_from(data)[1:]
    trip = code_from_index(int(v[9]))
    return ControlSnapshot(
        monotonic_s=v[0],
        power_w=v[1],
        commanded_w=v[2],
        soc_pct=_optional(v[3]),
        ev_connected=v[4] != 0.0,
        energy_import_wh=v[5],
        energy_export_wh=v[6],
        contactor_closed=v[7] != 0.0,
        fail_safe=v[8] != 0.0,
        trip_code=None if trip is None else str(trip),
        lease_remaining_s=v[10],
        lease_power_w=v[11],
        grid_freq_hz=v[12],
        sensor_power_w=_optional(v[13]),
        lateness_p50_us=v[14],
        lateness_p99_us=v[15],
        lateness_max_us=v[16],
        overruns=int(v[17]),
        cycles=int(v[18]),
        stopping=v[19] != 0.0,
    )


def encode_event(code: EventCode, now_s: float) -> bytes:
    return EVENT_STRUCT.pack(EVENT, index_of(code), now_s)


def decode_event(data: bytes | memoryview) -> tuple[EventCode, float]:
    _, index, now_s = EVENT_STRUCT.unpack_from(data)
    code = code_from_index(index)
    if code is None:
        raise ValueError(f"bad event index {index}")
    return code, now_s


def encode_freq_lease(baseline_w: float, valid_for_s: float, curve: FreqWattCurve) -> bytes:
    """A LocalFrequency lease: the baseline, its validity and the frequency-watt curve."""
    points = b"".join(
        FREQ_POINT_STRUCT.pack(f, p) for f, p in zip(curve.freq_hz, curve.power_w, strict=True)
    )
    return FREQ_HEAD_STRUCT.pack(FREQ_LEASE, len(curve.freq_hz), baseline_w, valid_for_s) + points


def decode_freq_lease(data: bytes | memoryview) -> tuple[float, float, FreqWattCurve]:
    """``(baseline_w, valid_for_s, curve)``; ``ValueError`` for a datagram that is not one
    (short, or a curve the law cannot execute: 2..20 points, Hz ascending)."""
    if len(data) < FREQ_HEAD_STRUCT.size:
        raise ValueError("short frequency lease")
    _, count, baseline_w, valid_for_s = FREQ_HEAD_STRUCT.unpack_from(data)
    if len(data) < FREQ_HEAD_STRUCT.size + count * FREQ_POINT_STRUCT.size:
        raise ValueError(f"frequency lease with {count} points does not fit")
    pairs = [
        FREQ_POINT_STRUCT.unpack_from(data, FREQ_HEAD_STRUCT.size + i * FREQ_POINT_STRUCT.size)
        for i in range(count)
    ]
    return baseline_w, valid_for_s, FreqWattCurve.from_points(pairs)
