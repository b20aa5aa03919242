"""Property tests of the control law over random setpoint sequences, ratings, SoC and timing.

The module is modelled as following the command exactly, the battery as an ideal integrator;
the clock is injected, step gaps are random but never longer than one period.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.unit.gateway.control.control_harness import measurement
from v2g_gateway.control.config import ControlSection
from v2g_gateway.control.law import EvLimits, Lease, Observation, initial_state, step
from v2g_gateway.control.ports import StageRatings

EPS_W = 1e-6
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

powers = st.floats(min_value=0.0, max_value=50000.0)
lease_power = st.floats(min_value=-60000.0, max_value=60000.0)
# (fraction of a period since the previous step, optional new lease (W, valid for s))
steps = st.lists(
    st.tuples(
        st.floats(min_value=0.2, max_value=1.0),
        st.none() | st.tuples(lease_power, st.floats(min_value=0.0, max_value=10.0)),
    ),
    min_size=1,
    max_size=300,
)


@dataclass(frozen=True)
class Limits:
    cfg: ControlSection
    ratings: StageRatings
    ev: EvLimits

    @property
    def max_charge_w(self) -> float:
        return min(self.ratings.max_charge_w, self.ev.max_charge_w, self.cfg.site_max_import_w)

    @property
    def max_discharge_w(self) -> float:
        return min(
            self.ratings.max_discharge_w, self.ev.max_discharge_w, self.cfg.site_max_export_w
        )


@st.composite
def limits(draw: st.DrawFn) -> Limits:
    soc_min = draw(st.floats(min_value=0.0, max_value=40.0))
    margin = draw(st.sampled_from([0.0, 2.0]) | st.floats(min_value=0.0, max_value=10.0))
    band = draw(st.floats(min_value=0.5, max_value=10.0))
    soc_max = draw(st.floats(min_value=soc_min + margin + 2 * band + 1.0, max_value=100.0))
    cfg = ControlSection(
        period_s=draw(st.sampled_from([0.01, 0.05, 0.1, 0.2])),
        ramp_w_per_s=draw(st.floats(min_value=100.0, max_value=10000.0)),
        site_max_import_w=draw(powers),
        site_max_export_w=draw(powers),
        soc_min_pct=soc_min,
        soc_margin_pct=margin,
        soc_max_pct=soc_max,
        soc_ramp_band_pct=band,
    )
    ratings = StageRatings(max_charge_w=draw(powers), max_discharge_w=draw(powers))
    return Limits(cfg, ratings, EvLimits(draw(powers), draw(powers)))


def floor_pct(cfg: ControlSection) -> float:
    """No discharge at or below the EV's minimum plus our margin."""
    return cfg.soc_min_pct + cfg.soc_margin_pct


def margin_capacity_wh(lim: Limits) -> float:
    """Battery capacity for which the SoC ramp band holds the energy of a full ramp-down (plus
    three periods at full power): the sizing rule etc/gateway.toml gives."""
    p = max(lim.max_charge_w, lim.max_discharge_w)
    energy_j = p * p / (2 * lim.cfg.ramp_w_per_s) + 3 * p * lim.cfg.period_s
    return 1.0 + energy_j / 3600.0 / (lim.cfg.soc_ramp_band_pct / 100.0)


@SETTINGS
@given(
    lim=limits(),
    sequence=steps,
    soc0=st.floats(min_value=0.0, max_value=100.0),
    capacity_wh=st.floats(min_value=1000.0, max_value=150000.0),
)
def test_commanded_power_respects_ramp_every_limit_and_the_soc_window(
    lim: Limits, sequence: list, soc0: float, capacity_wh: float
) -> None:
    cfg = lim.cfg
    capacity_wh = max(capacity_wh, margin_capacity_wh(lim))
    now, soc, lease = 0.0, soc0, None
    state = initial_state(now)
    for fraction, grant in sequence:
        dt = fraction * cfg.period_s
        now += dt
        if grant is not None:
            lease = Lease(grant[0], now + grant[1], now)
        previous = state.commanded_w
        m = measurement(power_w=previous, soc_pct=soc)
        out = step(state, Observation(now, m, previous, now, lease), cfg, lim.ratings, lim.ev)
        state = out.state
        commanded = out.setpoint_w
        assert abs(commanded - previous) <= cfg.ramp_w_per_s * dt + EPS_W
        assert -lim.max_discharge_w - EPS_W <= commanded <= lim.max_charge_w + EPS_W
        assert commanded >= 0.0 or soc > floor_pct(cfg)
        assert commanded <= 0.0 or soc < cfg.soc_max_pct
        soc += commanded * dt / 3600.0 / capacity_wh * 100.0


def soc_near(spec: float | str | tuple[str, float], cfg: ControlSection) -> float:
    if isinstance(spec, float):
        return spec
    name, offset = (spec, 0.0) if isinstance(spec, str) else spec
    edges = {"floor": floor_pct(cfg), "minimum": cfg.soc_min_pct, "ceiling": cfg.soc_max_pct}
    edge = edges[name]
    return min(max(edge + offset, 0.0), 100.0)


@SETTINGS
@given(
    lim=limits(),
    sequence=st.lists(
        st.tuples(
            st.none() | st.tuples(lease_power, st.floats(min_value=0.0, max_value=10.0)),
            # SoC jumps anywhere, often to (or right around) the floor and the ceiling;
            # None keeps the previous value
            st.none()
            | st.floats(min_value=0.0, max_value=100.0)
            | st.sampled_from(["floor", "minimum", "ceiling"])
            | st.tuples(st.sampled_from(["floor", "minimum", "ceiling"]), st.floats(-1.0, 1.0)),
            st.none() | powers,  # the EV's discharge limit changes (None: unchanged)
        ),
        min_size=1,
        max_size=200,
    ),
)
@example(  # pinned: discharging at full ramp when SoC lands exactly on minimum + margin
    lim=Limits(
        ControlSection(soc_min_pct=20.0, soc_margin_pct=2.0, soc_ramp_band_pct=1.0),
        StageRatings(11000.0, 11000.0),
        EvLimits(11000.0, 11000.0),
    ),
    sequence=[((-5000.0, 10.0), None, None), *[(None, None, None)] * 20, (None, "floor", None)],
)
def test_never_discharges_at_or_below_the_floor_nor_exceeds_limits_when_inputs_jump(
    lim: Limits, sequence: list
) -> None:
    cfg = lim.cfg
    now, lease, soc, ev = 0.0, None, 60.0, lim.ev
    state = initial_state(now)
    for grant, soc_spec, ev_discharge_w in sequence:
        now += cfg.period_s
        soc = soc if soc_spec is None else soc_near(soc_spec, cfg)
        if grant is not None:
            lease = Lease(grant[0], now + grant[1], now)
        if ev_discharge_w is not None:
            ev = EvLimits(lim.ev.max_charge_w, ev_discharge_w)
        m = measurement(power_w=state.commanded_w, soc_pct=soc)
        obs = Observation(now, m, state.commanded_w, now, lease)
        out = step(state, obs, cfg, lim.ratings, ev)
        state = out.state
        bound = Limits(cfg, lim.ratings, ev)
        assert -bound.max_discharge_w <= out.setpoint_w <= bound.max_charge_w
        assert out.setpoint_w >= 0.0 or soc > floor_pct(cfg)
        assert out.setpoint_w <= 0.0 or soc < cfg.soc_max_pct


@SETTINGS
@given(
    lim=limits(),
    before=steps,
    final=st.tuples(lease_power, st.floats(min_value=0.0, max_value=10.0)),
    gaps=st.lists(st.floats(min_value=0.2, max_value=1.0), min_size=1, max_size=50),
)
def test_reaches_zero_within_ramp_time_plus_one_period_of_lease_expiry(
    lim: Limits, before: list, final: tuple[float, float], gaps: list[float]
) -> None:
    cfg = lim.cfg
    now, lease = 0.0, None
    state = initial_state(now)

    def advance(dt: float) -> float:
        nonlocal now, state
        now += dt
        m = measurement(power_w=state.commanded_w, soc_pct=50.0)
        obs = Observation(now, m, state.commanded_w, now, lease)
        state = step(state, obs, cfg, lim.ratings, lim.ev).state
        return state.commanded_w

    for fraction, grant in before:
        if grant is not None:
            lease = Lease(grant[0], now + grant[1], now)
        advance(fraction * cfg.period_s)
    lease = Lease(final[0], now + final[1], now)
    held = state.commanded_w
    while now + cfg.period_s < lease.deadline_s:  # hold the lease until it runs out
        held = advance(cfg.period_s * gaps[int(now * 1000) % len(gaps)])
    bound = lease.deadline_s + abs(held) / cfg.ramp_w_per_s + cfg.period_s
    last = held
    while now <= bound + cfg.period_s:
        power = advance(cfg.period_s * gaps[int(now * 1000) % len(gaps)])
        if now >= lease.deadline_s:
            assert abs(power) <= abs(last) + EPS_W  # only ever towards 0 after expiry
        last = power
        if now >= bound:
            assert power == 0.0, f"{power} W at {now - lease.deadline_s:.3f} s after expiry"


@SETTINGS
@given(
    timeout_s=st.floats(min_value=1.0, max_value=60.0),
    period_s=st.sampled_from([0.01, 0.05, 0.1, 0.2]),
    outage_fraction=st.floats(min_value=0.0, max_value=1.5),
)
def test_contactor_opens_within_one_period_before_the_timeout_never_earlier(
    timeout_s: float, period_s: float, outage_fraction: float
) -> None:
    cfg = ControlSection(period_s=period_s, comms_loss_timeout_s=timeout_s)
    ratings = StageRatings(11000.0, 11000.0)
    now = 0.0
    state = initial_state(now)
    lease = Lease(0.0, 1e9, now)
    m = measurement()
    state = step(state, Observation(now, m, 0.0, now, lease), cfg, ratings, EvLimits()).state
    assert state.contactor_closed
    last_contact = now
    outage_s = outage_fraction * timeout_s
    opened_at = None
    while now < last_contact + outage_s:
        now += period_s
        out = step(state, Observation(now, m, 0.0, last_contact, lease), cfg, ratings, EvLimits())
        state = out.state
        if not out.contactor_closed and opened_at is None:
            opened_at = now - last_contact
    # the last step before the timeout opens (so that a late step still opens within one
    # period after it); never earlier than one period (or half the timeout) before it
    earliest_s = timeout_s - min(period_s, timeout_s / 2)
    if opened_at is None:
        assert outage_s < timeout_s
    else:
        assert earliest_s - 1e-9 <= opened_at <= timeout_s + 1e-9
