"""The supervisor's handle on the control process: leases and CSMS contact in, snapshots and
events out, over one non-blocking SOCK_SEQPACKET socket.

Everything here runs on the supervisor's asyncio loop; no method blocks. When the control
process stops reading (stalled), sends are dropped and counted: every message it misses errs
on the safe side (a missing lease or contact makes the loop fall back to 0 W sooner).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.frequency import FreqWattCurve
from v2g_gateway.control.wire import (
    CONTACT,
    EV_HOLD,
    EV_LIMITS,
    EVENT,
    LEASE,
    MAX_DATAGRAM,
    NO_SNAPSHOT,
    PAIR_STRUCT,
    SETTINGS,
    SINGLE_STRUCT,
    SNAPSHOT,
    STALL,
    STOP,
    ControlSnapshot,
    decode_event,
    decode_snapshot,
    encode_freq_lease,
)

__all__ = ["ControlChannel", "ControlEvent", "ControlSnapshot", "SetpointLease"]

#: CSMS contacts closer together than this are coalesced (the newest time is sent later).
CONTACT_COALESCE_S = 0.02
EVENT_QUEUE_SIZE = 256
_NEVER = -1e18  # no contact marked yet


@dataclass(frozen=True, slots=True)
class SetpointLease:
    """A setpoint in W (positive charges the EV) the control loop may hold for ``valid_for_s``
    from the moment it receives it; after that it ramps to 0 W. With a ``curve``
    (LocalFrequency) ``power_w`` is the baseline the curve's value at the measured grid
    frequency is added to."""

    power_w: float
    valid_for_s: float
    curve: FreqWattCurve | None = None

    def __post_init__(self) -> None:
        finite = math.isfinite(self.power_w) and math.isfinite(self.valid_for_s)
        if not (finite and self.valid_for_s >= 0):
            raise ValueError(f"invalid lease: {self.power_w} W for {self.valid_for_s} s")


@dataclass(frozen=True, slots=True)
class ControlEvent:
    """A stable event code the control loop raised, stamped with its monotonic time."""

    code: EventCode
    monotonic_s: float


class ControlChannel:
    """Supervisor side of the control link. Use ``async with`` (or :meth:`attach` /
    :meth:`detach`) on the running loop so snapshots are received."""

    def __init__(self, sock: socket.socket, *, clock: Callable[[], float] = time.monotonic) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._clock = clock
        self._latest = NO_SNAPSHOT
        self._changed = asyncio.Event()
        self._subscribers: list[asyncio.Queue[ControlEvent]] = []
        self._contact_sent_s = _NEVER
        self._contact_pending_s: float | None = None
        self._ev_held = False
        self._closed = asyncio.Event()
        self._buffer = bytearray(MAX_DATAGRAM)
        self.dropped_sends = 0
        self.received_s = -1e18

    # --- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> ControlChannel:
        self.attach()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.detach()

    def attach(self) -> None:
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._on_readable)

    def detach(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._sock.fileno())

    @property
    def closed(self) -> bool:
        """True once the control process has closed its end (exited or crashed)."""
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- commands ------------------------------------------------------------------------
    def grant_lease(self, lease: SetpointLease) -> None:
        if lease.curve is not None:
            self._send(encode_freq_lease(lease.power_w, lease.valid_for_s, lease.curve))
            return
        self._send(PAIR_STRUCT.pack(LEASE, lease.power_w, lease.valid_for_s))

    def mark_csms_contact(self) -> None:
        """Call on every successful exchange with the CSMS (cheap; coalesced)."""
        now = self._clock()
        if now - self._contact_sent_s >= CONTACT_COALESCE_S:
            self._send_contact(now)
        else:
            self._contact_pending_s = now

    @property
    def last_contact_s(self) -> float | None:
        """The monotonic time of the last CSMS contact marked (``None``: none yet); the
        control loop's comms-loss timer runs from the same stamp."""
        pending = self._contact_pending_s  # always later than the one sent
        latest = self._contact_sent_s if pending is None else pending
        return None if latest == _NEVER else latest

    def set_ev_limits(self, *, max_charge_w: float, max_discharge_w: float) -> None:
        """The EV's V2X limits as magnitudes in W (>= 0)."""
        if not (max_charge_w >= 0 and max_discharge_w >= 0):
            raise ValueError("EV limits are magnitudes >= 0")
        self._send(PAIR_STRUCT.pack(EV_LIMITS, max_charge_w, max_discharge_w))

    def hold_for_ev(self, held: bool) -> None:
        """The EV's session holds the output: ramp to 0 W and open the contactor, and keep it
        open until released (sent on change only)."""
        if held != self._ev_held:
            self._ev_held = held
            self._send(SINGLE_STRUCT.pack(EV_HOLD, 1.0 if held else 0.0))

    def reload_settings(self, section: ControlSection) -> None:
        """New limits and timings (SIGHUP); ``period_s`` and realtime keys stay as started."""
        self._send(bytes([SETTINGS]) + json.dumps(section.model_dump(mode="json")).encode())

    def request_stop(self) -> None:
        """Ramp to 0 W, open the contactor, and exit."""
        self._send(bytes([STOP]))

    def request_stall(self, seconds: float) -> None:
        """Test hook: block the control loop for ``seconds`` (see docs/installing-gateway.md)."""
        self._send(SINGLE_STRUCT.pack(STALL, seconds))

    # --- state ---------------------------------------------------------------------------
    def snapshot(self) -> ControlSnapshot:
        return self._latest

    async def wait_snapshot(
        self, predicate: Callable[[ControlSnapshot], bool], *, timeout_s: float
    ) -> ControlSnapshot:
        """The first snapshot (the current one included) satisfying ``predicate``."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self._latest):
                self._changed.clear()
                await self._changed.wait()
            return self._latest

    def subscribe_events(self) -> asyncio.Queue[ControlEvent]:
        """A bounded queue receiving every later event (oldest dropped when full)."""
        queue: asyncio.Queue[ControlEvent] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self._subscribers.append(queue)
        return queue

    # --- internals -----------------------------------------------------------------------
    def _send_contact(self, now: float) -> None:
        self._contact_sent_s = now
        self._contact_pending_s = None
        self._send(SINGLE_STRUCT.pack(CONTACT, now))

    def _send(self, data: bytes) -> None:
        if self.closed:
            self.dropped_sends += 1
            return
        try:
            self._sock.send(data)
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            self.dropped_sends += 1

    def _on_readable(self) -> None:
        view = memoryview(self._buffer)
        while True:
            try:
                n = self._sock.recv_into(self._buffer)
            except BlockingIOError:
                break
            except (ConnectionResetError, OSError):
                n = 0
            if n == 0:
                self._mark_closed()
                break
            self._dispatch(view[:n])
        if self._contact_pending_s is not None:
            self._send_contact(self._contact_pending_s)

    def _dispatch(self, data: memoryview) -> None:
        kind = data[0]
        if kind == SNAPSHOT:
            self._latest = decode_snapshot(data)
            self.received_s = self._clock()
            self._changed.set()
        elif kind == EVENT:
            code, stamp = decode_event(data)
            self._publish(ControlEvent(code, stamp))

    def _publish(self, event: ControlEvent) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def _mark_closed(self) -> None:
        self.detach()
        self._closed.set()
        self._changed.set()
