"""Split a power target over sessions: pure functions over numpy columns (no I/O, no clock).

Columns are magnitudes in the dispatch direction (W and Wh >= 0); the resulting
:class:`DispatchPlan` carries signed allocations (negative = discharge). Every plan
- deploys at most ``headroom`` x the available power (the rest is kept to absorb drop-outs),
- gives each session 0 or a power within [min_w, cap], where cap also keeps
  ``power x duration`` within the session's usable energy (its SoC/energy floor),
- keeps each station's and each site's sum within its limit,
- sums to the target, or to the feasible maximum with the shortfall and its reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vpp_core.dispatch.model import Algorithm, Direction, Exclusion, SessionKey

__all__ = ["DispatchPlan", "SessionColumns", "plan_dispatch"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
_EPS_W = 1e-6
MIN_CAP_W = 1.0  # below 1 W a session is not worth a command


@dataclass(frozen=True, slots=True, eq=False)
class SessionColumns:
    """Per-session columns for one direction; ``keys[i]`` names row ``i``.

    ``usable_wh`` is the energy the session may still move in this direction before its
    floor (inf = unbounded); ``merit`` ranks sessions for merit order (higher first).
    ``station_idx``/``site_idx`` index ``station_limit_w``/``site_limit_w`` (inf = none).
    """

    direction: Direction
    keys: tuple[SessionKey, ...]
    max_w: FloatArray
    min_w: FloatArray
    usable_wh: FloatArray
    merit: FloatArray
    station_idx: IntArray
    station_limit_w: FloatArray
    site_idx: IntArray
    site_limit_w: FloatArray
    excluded: tuple[Exclusion, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class DispatchPlan:
    """The outcome of one planning pass; ``allocation_w`` is signed and read-only."""

    direction: Direction
    algorithm: Algorithm
    requested_w: float
    committed_w: float
    available_w: float
    deployable_w: float
    headroom: float
    duration_s: float
    keys: tuple[SessionKey, ...]
    allocation_w: FloatArray
    shortfall_w: float
    shortfall_reason: str | None
    excluded: tuple[Exclusion, ...]

    @property
    def sessions_used(self) -> int:
        return int(np.count_nonzero(self.allocation_w))

    def allocations(self) -> Iterator[tuple[SessionKey, float]]:
        """(key, signed W) for every session with a non-zero allocation."""
        for i in np.flatnonzero(self.allocation_w):
            yield self.keys[i], float(self.allocation_w[i])


def plan_dispatch(
    columns: SessionColumns,
    *,
    target_w: float,
    duration_s: float,
    headroom: float,
    algorithm: Algorithm,
) -> DispatchPlan:
    """Plan ``target_w`` (signed, in ``columns.direction``) over ``duration_s`` seconds."""
    if duration_s <= 0 or not 0 < headroom <= 1:
        raise ValueError("duration_s must be > 0 and headroom in (0, 1]")
    sign = columns.direction.sign
    if target_w * sign < 0:
        raise ValueError(f"target_w {target_w} has the wrong sign for {columns.direction.value}")
    cap = session_caps(columns, duration_s=duration_s)
    cap, limit_excluded = apply_group_limits(columns, cap)
    available = float(cap.sum())
    deployable = headroom * available
    goal = min(abs(target_w), deployable)
    if algorithm == "merit_order":
        alloc = merit_order(cap, columns.min_w, columns.merit, goal)
    else:
        alloc = proportional(cap, columns.min_w, goal)
    alloc_signed = alloc * sign
    alloc_signed.setflags(write=False)
    committed = float(alloc.sum())
    shortfall = max(0.0, abs(target_w) - committed)
    excluded = columns.excluded + tuple(
        Exclusion(columns.keys[i], "station or site limit leaves less than its minimum power")
        for i in np.flatnonzero(limit_excluded)
    )
    return DispatchPlan(
        direction=columns.direction,
        algorithm=algorithm,
        requested_w=float(target_w),
        committed_w=committed * sign,
        available_w=available,
        deployable_w=deployable,
        headroom=headroom,
        duration_s=duration_s,
        keys=columns.keys,
        allocation_w=alloc_signed,
        shortfall_w=shortfall if shortfall > 1e-6 * max(1.0, abs(target_w)) else 0.0,
        shortfall_reason=_shortfall_reason(abs(target_w), committed, available, headroom),
        excluded=excluded,
    )


def _shortfall_reason(
    target: float, committed: float, available: float, headroom: float
) -> str | None:
    if target - committed <= 1e-6 * max(1.0, target):
        return None
    if available <= 0:
        return "no eligible session has power or energy available"
    if target > headroom * available + 1e-6:
        return (
            f"fleet can deploy {headroom * available:.0f} W "
            f"(headroom {headroom:.2f} of {available:.0f} W available)"
        )
    return "session minimum powers do not divide the target exactly"


def session_caps(columns: SessionColumns, *, duration_s: float) -> FloatArray:
    """Per-session maximum power: rated power, and energy floor over the window.

    Sessions whose cap falls below their minimum power get 0 (they cannot take part).
    """
    energy_cap = columns.usable_wh * 3600.0 / duration_s
    cap = np.minimum(columns.max_w, energy_cap)
    cap = np.where(np.isfinite(cap) & (cap >= MIN_CAP_W) & (cap >= columns.min_w), cap, 0.0)
    return cap


def _scale_groups(cap: FloatArray, idx: IntArray, limit_w: FloatArray) -> FloatArray:
    if limit_w.size == 0:
        return cap
    sums = np.bincount(idx, weights=cap, minlength=limit_w.size)
    factor = np.minimum(1.0, limit_w / np.maximum(sums, _EPS_W))
    return cap * factor[idx]


def apply_group_limits(
    columns: SessionColumns, cap: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Scale caps so each station and site stays within its limit.

    Where a session's share falls below its minimum power, the lowest-merit such session of
    the site is dropped and the shares are recomputed. Returns (caps, dropped mask).
    """
    ok = cap > 0
    dropped = np.zeros(cap.size, dtype=np.bool_)
    while True:
        scaled = _scale_groups(np.where(ok, cap, 0.0), columns.station_idx, columns.station_limit_w)
        scaled = _scale_groups(scaled, columns.site_idx, columns.site_limit_w)
        bad = np.flatnonzero(ok & (scaled < columns.min_w - _EPS_W))
        if bad.size == 0:
            return scaled, dropped
        order = np.lexsort((columns.merit[bad], columns.site_idx[bad]))
        _, first = np.unique(columns.site_idx[bad][order], return_index=True)
        worst = bad[order][first]
        ok[worst] = False
        dropped[worst] = True


def proportional(cap: FloatArray, min_w: FloatArray, goal_w: float) -> FloatArray:
    """Allocations proportional to ``cap`` summing to ``goal_w`` (<= sum of caps).

    A session gets 0 or at least its minimum: those raised to their minimum take it, the rest
    share proportionally. When the minimums alone exceed the goal, the smallest sessions sit out.
    """
    alloc = np.zeros(cap.size)
    idx = np.flatnonzero(cap > 0)
    if goal_w <= 0 or idx.size == 0:
        return alloc
    if min_w[idx].sum() > goal_w:
        order = idx[np.argsort(-cap[idx], kind="stable")]
        idx = order[np.cumsum(min_w[order]) <= goal_w]
        if idx.size == 0:
            return alloc
    cc, mm = cap[idx], min_w[idx]
    breaks = mm / cc
    order = np.argsort(breaks, kind="stable")
    cum_c = np.cumsum(cc[order])
    rest_m = mm.sum() - np.cumsum(mm[order])
    g_at_break = breaks[order] * cum_c + rest_m  # total at each breakpoint, non-decreasing
    k = max(0, int(np.searchsorted(g_at_break, goal_w, side="right")) - 1)
    frac = min(1.0, (goal_w - rest_m[k]) / cum_c[k])
    alloc[idx] = np.minimum(cc, np.maximum(mm, cc * frac))
    return alloc


def merit_order(cap: FloatArray, min_w: FloatArray, merit: FloatArray, goal_w: float) -> FloatArray:
    """Fill sessions to their cap in order of merit until ``goal_w`` is reached.

    The marginal session takes the remainder; if that is below its minimum, earlier
    (lowest-merit first) sessions give up power down to their own minimums to make room.
    """
    alloc = np.zeros(cap.size)
    idx = np.flatnonzero(cap > 0)
    if goal_w <= 0 or idx.size == 0:
        return alloc
    order = idx[np.argsort(-merit[idx], kind="stable")]
    cum = np.cumsum(cap[order])
    k = int(np.searchsorted(cum, goal_w - _EPS_W))
    if k >= order.size:
        alloc[order] = cap[order]
        return alloc
    alloc[order[:k]] = cap[order[:k]]
    _place_remainder(alloc, order, k, goal_w - (cum[k - 1] if k else 0.0), cap, min_w)
    return alloc


def _place_remainder(
    alloc: FloatArray, order: IntArray, k: int, rest_w: float, cap: FloatArray, min_w: FloatArray
) -> None:
    j = order[k]
    if rest_w >= min_w[j] - _EPS_W:
        alloc[j] = min(cap[j], max(rest_w, min_w[j]))
        return
    deficit = min_w[j] - rest_w
    earlier = order[:k][::-1]
    slack = cap[earlier] - min_w[earlier]
    taken_before = np.cumsum(slack) - slack
    if k and taken_before[-1] + slack[-1] >= deficit:
        alloc[earlier] -= np.minimum(slack, np.maximum(0.0, deficit - taken_before))
        alloc[j] = min_w[j]
        return
    later = order[k + 1 :]
    fits = later[min_w[later] <= rest_w]
    if fits.size:
        alloc[fits[0]] = min(rest_w, cap[fits[0]])
