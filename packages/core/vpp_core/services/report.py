"""A frequency service's report for settlement and prequalification (pure).

**Capacity per interval.** The window is cut at the product's settlement period, aligned to
the UTC clock (the first and last interval clipped to the window): 15 min for FCR and FFR
(the EU imbalance settlement period, EB GL Art. 53, and the Nordic one since 2023), 30 min for
Dynamic Containment (the GB settlement period). Per interval and direction: the contracted
capacity, what the plan committed, what the stations had accepted (the minimum over the
samples), and what the fleet could *deliver*: each accepted share limited by what its session
could sustain for the product's endurance from that moment, from its live limits and SoC
(``allocation.deliverable_w``); minimum and mean over the samples. A sample is taken every
``[dispatch] control_period_s`` while the service holds (the sample count is stated).

**Per activation.** The data source is the edge: each gateway logs frequency and measured
power every 100 ms and reports each activation in a ``FREQUENCY_ACTIVATION`` event
(``v2g_common.telemetry.activation``: the log thinned to 100 ms for 5 s, 1 s to 60 s, ...).
The stations' MeterValues (every ``sampled_data_interval_s``, 60 s by default) are too coarse
for a delay or a sub-second activation. Station activations starting within
:data:`GROUP_S` of each other are one fleet activation, timed from the earliest start. A
station's *expected* response is its share's curve at the frequency it measured (the share in
force when its activation started); its *delivered* response is its measured power minus its
mean power in the 10 s before. The fleet's are the sums. Times are to the first point where
delivered / reference >= 1 % (delay), 50 %, 95 % and 99 % ("100 %": 1 % metering tolerance),
the reference being the expected response at its peak. Energies (Wh, signed: negative = out of
the EVs) are integrated over the series, expected and delivered, judged apart from power. A
station that held a share and has not reported the activation (yet: a gateway reports it when
it ends, up to 15 min after the last excursion) is listed as missing and counted as expected
at the fleet's mean frequency and delivering nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from v2g_common.telemetry.activation import spacing
from vpp_core.dispatch.model import Direction
from vpp_core.services.activations import StationActivation
from vpp_core.services.allocation import SessionShare
from vpp_core.services.curves import share_curve
from vpp_core.services.products import Product, ServiceRequest

__all__ = [
    "GROUP_S",
    "SETTLEMENT_PERIOD_S",
    "ActivationResponse",
    "CapacityInterval",
    "CapacityLedger",
    "Requirement",
    "ResponseFigures",
    "ShareLog",
    "fleet_activations",
]

SETTLEMENT_PERIOD_S: dict[Product, float] = {
    Product.FCR: 900.0,
    Product.FFR: 900.0,
    Product.DYNAMIC_CONTAINMENT: 1800.0,
    Product.AFRR: 900.0,
}
#: Station activations starting this close to the group's first are one fleet activation.
GROUP_S = 10.0
_LEVELS = {"delay_s": 0.01, "t50_s": 0.5, "t95_s": 0.95, "t100_s": 0.99}
#: Product rules on the times (s), besides full activation within ``full_activation_s``:
#: FCR 50 % within 15 s (SOGL Annex V); Dynamic Containment delay <= 0.5 s (NESO terms).
_EXTRA_RULES: dict[Product, tuple[tuple[str, float], ...]] = {
    Product.FCR: (("t50_s", 15.0),),
    Product.DYNAMIC_CONTAINMENT: (("delay_s", 0.5),),
}
_DIRS = (Direction.DISCHARGE.value, Direction.CHARGE.value)


# -- capacity per interval --------------------------------------------------------------------


@dataclass
class CapacityInterval:
    """One settlement interval's capacity figures (W, magnitudes, per direction)."""

    start: datetime
    end: datetime
    contracted_w: dict[str, float]
    samples: int = 0
    planned_w: dict[str, float] = field(default_factory=dict)
    held_min_w: dict[str, float] = field(default_factory=dict)
    deliverable_min_w: dict[str, float] = field(default_factory=dict)
    deliverable_sum_w: dict[str, float] = field(default_factory=dict)

    def add(self, planned: Mapping[str, float], held: Mapping[str, float],
            deliverable: Mapping[str, float]) -> None:  # fmt: skip
        self.samples += 1
        for d in self.contracted_w:
            self.planned_w[d] = planned.get(d, 0.0)
            self.held_min_w[d] = min(self.held_min_w.get(d, math.inf), held.get(d, 0.0))
            got = deliverable.get(d, 0.0)
            self.deliverable_min_w[d] = min(self.deliverable_min_w.get(d, math.inf), got)
            self.deliverable_sum_w[d] = self.deliverable_sum_w.get(d, 0.0) + got

    def deliverable_mean_w(self, direction: str) -> float:
        return self.deliverable_sum_w.get(direction, 0.0) / self.samples if self.samples else 0.0

    def covered(self, direction: str) -> bool:
        """The fleet could deliver the contracted capacity at every sample of the interval."""
        need = self.contracted_w[direction]
        return self.samples > 0 and self.deliverable_min_w[direction] >= need * (1 - 1e-6)


class CapacityLedger:
    """The intervals of one service, sampled as it holds."""

    def __init__(self, request: ServiceRequest, intervals: Sequence[CapacityInterval] = ()) -> None:
        self.request = request
        self.period_s = SETTLEMENT_PERIOD_S[request.product]
        self.intervals = list(intervals)

    def _bounds(self, at: datetime) -> tuple[datetime, datetime]:
        epoch = at.astimezone(UTC).timestamp()
        start = datetime.fromtimestamp(epoch - epoch % self.period_s, UTC)
        end = start + timedelta(seconds=self.period_s)
        return max(start, self.request.start), min(end, self.request.end)

    def sample(self, at: datetime, *, planned: Mapping[str, float], held: Mapping[str, float],
               deliverable: Mapping[str, float]) -> None:  # fmt: skip
        """Record the figures at ``at`` (inside the window; others are ignored)."""
        if not self.request.start <= at < self.request.end:
            return
        if not self.intervals or not self.intervals[-1].start <= at < self.intervals[-1].end:
            start, end = self._bounds(at)
            r = self.request
            contracted = {"discharge": r.discharge_w, "charge": r.charge_w}
            self.intervals.append(
                CapacityInterval(start, end, {d: w for d, w in contracted.items() if w > 0})
            )
        self.intervals[-1].add(planned, held, deliverable)


# -- the shares in force ----------------------------------------------------------------------


@dataclass
class ShareLog:
    """The shares the stations accepted, each time they changed: the expected response of an
    activation is the share in force when it started."""

    entries: list[tuple[datetime, dict[str, SessionShare]]] = field(default_factory=list)

    def record(self, at: datetime, shares: Sequence[SessionShare]) -> None:
        now = {s.key.station_id: s for s in shares}
        if not self.entries or self.entries[-1][1] != now:
            self.entries.append((at, now))

    def at(self, when: datetime) -> dict[str, SessionShare]:
        current: dict[str, SessionShare] = self.entries[0][1] if self.entries else {}
        for at, shares in self.entries:
            if at > when:
                break
            current = shares
        return current

    def stations(self) -> set[str]:
        return {sid for _, shares in self.entries for sid in shares}


# -- per activation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """A product rule on a time: ``measured_s`` None when the level was never reached."""

    figure: str
    limit_s: float
    measured_s: float | None

    @property
    def met(self) -> bool:
        return self.measured_s is not None and self.measured_s <= self.limit_s


@dataclass(frozen=True, slots=True)
class ResponseFigures:
    """Expected vs delivered over one activation (fleet or station). ``reference_w``: the
    expected response at its peak (signed); times from the start, None if never reached."""

    reference_w: float
    delay_s: float | None
    t50_s: float | None
    t95_s: float | None
    t100_s: float | None
    expected_wh: float
    delivered_wh: float
    points: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class ActivationResponse:
    """One fleet activation: ``series`` is (t_s, mean freq_hz, expected_w, delivered_w)."""

    started_at: datetime
    delta_f_hz: float
    direction: str
    fleet: ResponseFigures
    stations: dict[str, ResponseFigures]
    requirements: tuple[Requirement, ...]
    series: tuple[tuple[float, float, float, float], ...]
    #: Sample set: stations reporting it, holding a share but silent, reporting without a share.
    reported: tuple[str, ...]
    missing: tuple[str, ...]
    without_share: tuple[str, ...]


def _grid(until_s: float) -> np.ndarray:
    """The series' own spacing (``v2g_common.telemetry.activation``) from 0 to ``until_s``."""
    out, t = [0.0], 0.0
    while t < until_s:
        t = round(t + spacing(t), 3)
        out.append(t)
    return np.array(out)


def _figures(t: np.ndarray, expected: np.ndarray, delivered: np.ndarray) -> ResponseFigures:
    peak = int(np.argmax(np.abs(expected))) if expected.size else 0
    reference = float(expected[peak]) if expected.size else 0.0
    times: dict[str, float | None] = dict.fromkeys(_LEVELS)
    if abs(reference) >= 1.0:
        ratio = delivered / reference
        for name, level in _LEVELS.items():
            hit = np.flatnonzero(ratio >= level)
            times[name] = round(float(t[hit[0]]), 3) if hit.size else None
    return ResponseFigures(
        reference_w=reference,
        delay_s=times["delay_s"],
        t50_s=times["t50_s"],
        t95_s=times["t95_s"],
        t100_s=times["t100_s"],
        expected_wh=float(np.trapezoid(expected, t)) / 3600.0,
        delivered_wh=float(np.trapezoid(delivered, t)) / 3600.0,
        points=int(t.size),
        duration_s=float(t[-1]) if t.size else 0.0,
    )


def _curve_at(share: SessionShare, request: ServiceRequest, freq: np.ndarray) -> np.ndarray:
    """The share's curve (W) at each frequency of ``freq``."""
    curve = share_curve(request, discharge_w=share.discharge_w, charge_w=share.charge_w)
    hz = np.array([p.frequency_hz for p in curve])
    return np.interp(freq, hz, np.array([p.power_w for p in curve]))


def _station_curves(
    a: StationActivation,
    share: SessionShare,
    request: ServiceRequest,
    t: np.ndarray,
    shift_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(freq, expected, delivered) of one station on the fleet's grid ``t``; before its own
    start it measured inside the dead-band: nominal, nothing expected, nothing delivered."""
    series = np.array(a.series)
    local = t - shift_s
    before = local < 0
    freq = np.where(before, a.nominal_hz, np.interp(local, series[:, 0], series[:, 1]))
    power = np.interp(local, series[:, 0], series[:, 2])
    expected = np.where(before, 0.0, _curve_at(share, request, freq))
    delivered = np.where(before, 0.0, power - a.baseline_w)
    return freq, expected, delivered


def _groups(activations: Sequence[StationActivation]) -> Iterator[list[StationActivation]]:
    group: list[StationActivation] = []
    for a in sorted(activations, key=lambda x: x.started_at):
        if group and (a.started_at - group[0].started_at).total_seconds() > GROUP_S:
            yield group
            group = []
        group.append(a)
    if group:
        yield group


def _requirements(
    product: Product, fleet: ResponseFigures, full_s: float
) -> tuple[Requirement, ...]:
    rules = (*_EXTRA_RULES.get(product, ()), ("t100_s", full_s))
    return tuple(Requirement(name, limit, getattr(fleet, name)) for name, limit in rules)


def _response(
    group: list[StationActivation], shares: ShareLog, request: ServiceRequest
) -> ActivationResponse:
    t0 = group[0].started_at
    in_force = shares.at(t0)
    held = [a for a in group if a.station_id in in_force]
    shifts = {a.station_id: (a.started_at - t0).total_seconds() for a in held}
    t = _grid(max((shifts[a.station_id] + a.last_s for a in held), default=0.0))
    freq_sum, expected, delivered = np.zeros(t.size), np.zeros(t.size), np.zeros(t.size)
    stations = {}
    for a in held:
        f, e, d = _station_curves(a, in_force[a.station_id], request, t, shifts[a.station_id])
        freq_sum += f
        expected += e
        delivered += d
        stations[a.station_id] = _figures(t, e, d)
    freq = freq_sum / len(held) if held else np.full(t.size, request.nominal_hz)
    reported = {a.station_id for a in group}
    for sid in set(in_force) - reported:  # silent: expected at the fleet's frequency, 0 delivered
        expected += _curve_at(in_force[sid], request, freq)
    fleet = _figures(t, expected, delivered)
    peak = int(np.argmax(np.abs(freq - request.nominal_hz)))
    return ActivationResponse(
        started_at=t0,
        delta_f_hz=round(float(freq[peak] - request.nominal_hz), 4),
        direction="discharge" if fleet.reference_w < 0 else "charge",
        fleet=fleet,
        stations=stations,
        requirements=_requirements(request.product, fleet, request.spec.full_activation_s),
        series=tuple(zip(t.tolist(), freq.tolist(), expected.tolist(), delivered.tolist(),
                         strict=True)),
        reported=tuple(sorted(reported)),
        missing=tuple(sorted(set(in_force) - reported)),
        without_share=tuple(sorted(reported - set(in_force))),
    )  # fmt: skip


def fleet_activations(
    activations: Sequence[StationActivation], shares: ShareLog, request: ServiceRequest
) -> list[ActivationResponse]:
    """The fleet's activations, oldest first (see the module docstring)."""
    return [_response(g, shares, request) for g in _groups(activations)]
