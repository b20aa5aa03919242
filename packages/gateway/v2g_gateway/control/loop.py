"""The fixed-rate control loop: runs in its own process, owns the power stage, the sensor and
the contactor, and applies :func:`v2g_gateway.control.law.step` once per period.

Cycle: wait for the absolute deadline -> drain supervisor messages -> read module and sensor
-> law step -> write setpoint / contactor -> send snapshot. The loop body does no logging and
no string formatting, creates no reference cycles (the cyclic GC is off after start-up) and
never raises because a device misbehaves: a failed read is an observation the law acts on.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from typing import Protocol

from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.events import index_of
from v2g_gateway.control.law import (
    EvLimits,
    LawOutput,
    Lease,
    Observation,
    initial_state,
    step,
)
from v2g_gateway.control.ports import (
    Contactor,
    PowerSensor,
    PowerStage,
    StageMeasurement,
    StageRatings,
)
from v2g_gateway.control.realtime import (
    LatenessStats,
    PreciseSleeper,
    collect_young,
    freeze_heap,
    thaw_heap,
)
from v2g_gateway.control.wire import (
    CONTACT,
    EV_HOLD,
    EV_LIMITS,
    FREQ_LEASE,
    LEASE,
    MAX_DATAGRAM,
    PAIR_STRUCT,
    SETTINGS,
    SINGLE_STRUCT,
    SNAPSHOT_STRUCT,
    STALL,
    STOP,
    decode_freq_lease,
    encode_event,
    encode_snapshot_into,
)

__all__ = ["ControlLoop", "Sleeper"]

_NAN = math.nan
#: Percentiles are recomputed about once per second of cycles.
_STATS_EVERY_S = 1.0
_RESTART_KEYS = ("period_s", "realtime_priority", "realtime_mlockall")


class Sleeper(Protocol):
    async def wait_until(self, deadline_s: float) -> None: ...

    def block_until(self, deadline_s: float) -> None: ...


class ControlLoop:
    """One instance per control process. ``sock`` is the control end of the SEQPACKET pair."""

    def __init__(
        self,
        *,
        stage: PowerStage,
        sensor: PowerSensor,
        contactor: Contactor,
        sock: socket.socket,
        settings: ControlSection,
        clock: Callable[[], float] = time.monotonic,
        sleeper: Sleeper | None = None,
    ) -> None:
        sock.setblocking(False)
        self._stage, self._sensor, self._contactor, self._sock = stage, sensor, contactor, sock
        self._cfg = settings
        self._clock = clock
        self._sleeper: Sleeper = sleeper or PreciseSleeper()
        self._stats = LatenessStats()
        self._rx = bytearray(MAX_DATAGRAM)
        self._tx = bytearray(SNAPSHOT_STRUCT.size)
        self._tx_view = memoryview(self._tx)
        self._lease: Lease | None = None
        self._ev = EvLimits()
        self._last_contact_s = 0.0
        self._stop_requested = False
        self._ev_hold = False
        self._orphaned = False
        self._stall_s = 0.0
        self._overruns = 0
        self._cycles = 0
        self._last: StageMeasurement | None = None
        self._sensor_w: float | None = None
        self._revert_due_s = 0.0
        self._state = initial_state(0.0)

    @property
    def orphaned(self) -> bool:
        """True once the supervisor's end of the socket closed."""
        return self._orphaned

    async def run(self) -> int:
        """Run until stopped (STOP message, or supervisor gone and lease over); 0 W and an
        open contactor on return."""
        ratings = await self._stage.read_ratings()
        await self._enter_safe_state()
        start = self._clock()
        self._state = initial_state(start)
        self._last_contact_s = start
        await self._refresh_revert(start)
        stats_every = max(1, round(_STATS_EVERY_S / self._cfg.period_s))
        freeze_heap()
        try:
            await self._run_cycles(ratings, stats_every)
        finally:
            thaw_heap()
        return 0

    async def _run_cycles(self, ratings: StageRatings, stats_every: int) -> None:
        deadline = self._clock() + self._cfg.period_s
        while True:
            await self._sleeper.wait_until(deadline)
            now = self._clock()
            self._stats.record(now - deadline)
            deadline = self._next_deadline(deadline, now)
            done = await self._cycle(now, ratings)
            if self._cycles % stats_every == 0:  # about once a second, after the cycle
                self._stats.update_percentiles()
                collect_young()
            if done:
                return

    def _next_deadline(self, deadline: float, now: float) -> float:
        period = self._cfg.period_s
        deadline += period
        if deadline <= now:  # overrun: skip the missed slots, keep the phase
            missed = math.floor((now - deadline) / period) + 1
            self._overruns += missed
            deadline += missed * period
        return deadline

    async def _cycle(self, now: float, ratings: StageRatings) -> bool:
        self._drain(now)
        measurement = await self._read_stage()
        sensor_w = self._read_sensor()
        lease = self._lease
        stopping = self._stop_requested or (
            self._orphaned and (lease is None or now >= lease.deadline_s)
        )
        obs = Observation(
            now, measurement, sensor_w, self._last_contact_s, lease, stopping, self._ev_hold
        )
        out = step(self._state, obs, self._cfg, ratings, self._ev)
        await self._apply(out, now)
        self._cycles += 1
        if out.events:
            applied = self._clock()  # stamped when the output shows them (contactor open)
            for code in out.events:
                self._send(encode_event(code, applied))
        self._send_snapshot(now, out, stopping)
        if self._stall_s > 0:
            self._sleeper.block_until(self._clock() + self._stall_s)
            self._stall_s = 0.0
        return stopping and not out.contactor_closed and out.setpoint_w == 0.0

    # --- devices -------------------------------------------------------------------------
    async def _enter_safe_state(self) -> None:
        """Whatever a previous run left behind: 0 W, not energized, contactor open."""
        await self._stage.write_setpoint(0.0)
        await self._energize(False)
        self._safe_contactor(close=False)

    async def _read_stage(self) -> StageMeasurement | None:
        try:
            measurement = await self._stage.read_measurement()
        except Exception:
            return None
        self._last = measurement
        return measurement

    def _read_sensor(self) -> float | None:
        try:
            value = self._sensor.read_power_w()
        except Exception:
            value = None
        self._sensor_w = value
        return value

    async def _apply(self, out: LawOutput, now: float) -> None:
        was_closed = self._state.contactor_closed
        self._state = out.state
        if out.contactor_closed and not was_closed:
            self._safe_contactor(close=True)
            await self._energize(True)
        try:
            await self._stage.write_setpoint(out.setpoint_w)
        except Exception:
            pass  # the module's revert timer and the read-failure trip cover a dead link
        if was_closed and not out.contactor_closed:
            await self._energize(False)
            self._safe_contactor(close=False)
        if now >= self._revert_due_s:
            await self._refresh_revert(now)

    async def _energize(self, on: bool) -> None:
        try:
            await self._stage.set_energized(on)
        except Exception:
            pass

    def _safe_contactor(self, *, close: bool) -> None:
        try:
            if close:
                self._contactor.close()
            else:
                self._contactor.open()
        except Exception:
            pass

    async def _refresh_revert(self, now: float) -> None:
        self._revert_due_s = now + self._cfg.revert_refresh_s
        try:
            await self._stage.program_revert(timeout_s=self._cfg.revert_timeout_s)
        except Exception:
            self._revert_due_s = now + self._cfg.period_s * 10  # retry soon

    # --- supervisor link -----------------------------------------------------------------
    def _drain(self, now: float) -> None:
        while not self._orphaned:
            try:
                n = self._sock.recv_into(self._rx)
            except BlockingIOError:
                return
            except OSError:
                n = 0
            if n == 0:
                self._orphaned = True
                return
            self._handle(n, now)

    def _handle(self, n: int, now: float) -> None:
        kind = self._rx[0]
        if kind == LEASE:
            _, power_w, valid_for_s = PAIR_STRUCT.unpack_from(self._rx)
            if math.isfinite(power_w) and math.isfinite(valid_for_s) and valid_for_s >= 0:
                self._lease = Lease(power_w, now + valid_for_s, now)
        elif kind == CONTACT:
            stamp = SINGLE_STRUCT.unpack_from(self._rx)[1]
            self._last_contact_s = max(self._last_contact_s, min(stamp, now))
        elif kind == EV_LIMITS:
            _, charge_w, discharge_w = PAIR_STRUCT.unpack_from(self._rx)
            if charge_w >= 0 and discharge_w >= 0:
                self._ev = EvLimits(charge_w, discharge_w)
        elif kind == SETTINGS:
            self._reload(bytes(self._rx[1:n]))
        elif kind == EV_HOLD:
            self._ev_hold = SINGLE_STRUCT.unpack_from(self._rx)[1] != 0.0
        elif kind == STALL:
            self._stall_s = SINGLE_STRUCT.unpack_from(self._rx)[1]
        elif kind == STOP:
            self._stop_requested = True
        elif kind == FREQ_LEASE:
            self._grant_frequency_lease(n, now)

    def _grant_frequency_lease(self, n: int, now: float) -> None:
        try:
            baseline_w, valid_for_s, curve = decode_freq_lease(memoryview(self._rx)[:n])
        except ValueError:
            return  # the supervisor built it from a checked curve; garbled means no lease
        if math.isfinite(baseline_w) and math.isfinite(valid_for_s) and valid_for_s >= 0:
            self._lease = Lease(baseline_w, now + valid_for_s, now, curve)

    def _reload(self, payload: bytes) -> None:
        try:
            fresh = ControlSection.model_validate_json(payload)
        except ValueError:
            return  # the supervisor validated it; a garbled reload keeps the old limits
        keep = {key: getattr(self._cfg, key) for key in _RESTART_KEYS}
        self._cfg = fresh.model_copy(update=keep)

    def _send(self, data: bytes | memoryview) -> None:
        if self._orphaned:
            return
        try:
            self._sock.send(data)
        except BlockingIOError:
            pass  # supervisor busy: it keeps the previous snapshot
        except OSError:
            self._orphaned = True

    def _send_snapshot(self, now: float, out: LawOutput, stopping: bool) -> None:
        m = self._last
        st = out.state
        lease = self._lease
        stats = self._stats
        encode_snapshot_into(
            self._tx,
            (
                now,
                _NAN if m is None else m.power_w,
                out.setpoint_w,
                _NAN if m is None or m.soc_pct is None else m.soc_pct,
                0.0 if m is None else float(m.ev_connected),
                0.0 if m is None else m.energy_import_wh,
                0.0 if m is None else m.energy_export_wh,
                float(out.contactor_closed),
                float(st.failsafe),
                -1.0 if st.trip is None else float(index_of(st.trip)),
                0.0 if lease is None else max(0.0, lease.deadline_s - now),
                0.0 if lease is None or now >= lease.deadline_s else lease.power_w,
                _NAN if m is None else m.grid_freq_hz,
                _NAN if self._sensor_w is None else self._sensor_w,
                stats.p50_us,
                stats.p99_us,
                stats.max_us,
                float(self._overruns),
                float(self._cycles),
                float(stopping),
            ),
        )
        self._send(self._tx_view)
