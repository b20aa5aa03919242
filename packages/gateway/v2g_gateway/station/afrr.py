"""The CSMS's aFRR signal stream (OCPP 2.1 ``AFRRSignalRequest`` {``timestamp``, ``signal``})
as the station holds it. Pure: ``now`` (the station's UTC clock) is an argument.

A signal is in force from its ``timestamp`` ("time when signal becomes active") until the next
one's, and for at most ``valid_for_s`` after its timestamp: a stream that stops (an operator
or core that went quiet, a lost link) falls back to no aFRR response (baseline only) instead
of holding the last activation. A station going offline drops the stream at once (aFRR does
not outlive the link; the control loop's comms-loss fail-safe still rules beneath it).

Refused (``AFRRSignalResponse`` Rejected, ``statusInfo.reasonCode``): a timestamp more than
``valid_for_s`` in the past (``ValueOutOfRange``: the signal would be stale on arrival) or
ahead (``ValueOutOfRange``: a clock that far off is not trusted to schedule power). The
caller refuses a signal while no EVSE follows a CentralFrequency period (``NotEnabled``).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta

from v2g_gateway.station.errors import ProfileRejected
from v2g_gateway.station.signal_profiles import SignalWattCurve

__all__ = ["AfrrSignal", "AfrrSignals", "afrr_target_w"]

#: Signals waiting for their timestamp, at most (a burst beyond it drops the oldest).
_MAX_PENDING = 16


@dataclass(frozen=True, slots=True, order=True)
class AfrrSignal:
    active_from: datetime
    signal: int


class AfrrSignals:
    """The signal in force and those scheduled after it."""

    def __init__(self, *, valid_for_s: float) -> None:
        self.valid_for = timedelta(seconds=valid_for_s)
        self._signals: list[AfrrSignal] = []

    def accept(self, signal: int, timestamp: datetime, *, now: datetime) -> None:
        """Schedule ``signal`` from ``timestamp``; raise :class:`ProfileRejected` if stale or
        too far ahead."""
        if timestamp <= now - self.valid_for:
            raise ProfileRejected(
                "ValueOutOfRange",
                f"timestamp {timestamp.isoformat()} is older than the signal validity "
                f"({self.valid_for.total_seconds():g} s)",
            )
        if timestamp > now + self.valid_for:
            raise ProfileRejected(
                "ValueOutOfRange",
                f"timestamp {timestamp.isoformat()} is more than "
                f"{self.valid_for.total_seconds():g} s ahead of the station's clock",
            )
        bisect.insort(self._signals, AfrrSignal(timestamp, signal))
        del self._signals[:-_MAX_PENDING]

    def current(self, *, now: datetime) -> int | None:
        """The signal in force at ``now``, or ``None`` (none yet, or the last one is stale)."""
        due = bisect.bisect_right(self._signals, now, key=lambda s: s.active_from)
        if due == 0:
            return None
        del self._signals[: due - 1]  # the latest due one replaces every earlier one
        latest = self._signals[0]
        return latest.signal if now - latest.active_from < self.valid_for else None

    def response_w(self, curve: SignalWattCurve, *, now: datetime) -> float:
        """The watts ``curve`` adds to the baseline at ``now``: 0 W without a live signal."""
        signal = self.current(now=now)
        return 0.0 if signal is None else curve.value_w(signal)

    def drop(self) -> None:
        """Forget every signal (the link is gone)."""
        self._signals.clear()


def afrr_target_w(
    baseline_w: float, response_w: float, *, limit_w: float | None, discharge_limit_w: float | None
) -> float:
    """Baseline + the signal's watts within the period's ``limit`` / ``dischargeLimit`` (the
    composite's, already bounded by the EVSE's and the EV's limits); the control law then
    clamps it again by the module, site and SoC limits as any setpoint."""
    power_w = baseline_w + response_w
    if limit_w is not None:
        power_w = min(power_w, limit_w)
    if discharge_limit_w is not None:
        power_w = max(power_w, discharge_limit_w)
    return power_w
