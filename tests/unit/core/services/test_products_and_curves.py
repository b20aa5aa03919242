"""Frequency products (grid-code defaults, request checks) and the per-session curve shape."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2g_gateway.control.frequency import FreqWattCurve
from vpp_core.services.curves import CurvePoint, share_curve
from vpp_core.services.errors import InvalidServiceError
from vpp_core.services.products import PRODUCTS, Product, ServiceRequest

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def fcr(**kw: object) -> ServiceRequest:
    args: dict[str, object] = {"capacity_w": 100_000.0, "start": T0, "duration_s": 3600.0}
    args.update(kw)
    return ServiceRequest.of(Product.FCR, **args)  # type: ignore[arg-type]


def test_fcr_defaults_are_the_continental_european_ones() -> None:
    r = fcr()
    assert (r.deadband_mhz, r.full_activation_mhz, r.direction) == (10.0, 200.0, "symmetric")
    assert r.spec.endurance_s == 900.0
    assert r.spec.full_activation_s == 30.0
    assert (r.discharge_w, r.charge_w) == (100_000.0, 100_000.0)


def test_one_direction_holds_capacity_that_way_only() -> None:
    r = fcr(direction="discharge")
    assert (r.discharge_w, r.charge_w) == (100_000.0, 0.0)
    ffr = ServiceRequest.of(Product.FFR, capacity_w=1e5, start=T0, duration_s=600.0)
    assert (ffr.direction, ffr.charge_w) == ("discharge", 0.0)


def test_a_bad_request_names_every_field_and_why() -> None:
    with pytest.raises(InvalidServiceError) as caught:
        ServiceRequest.of(
            Product.FCR,
            capacity_w=-1.0,
            start=datetime(2026, 12, 3),
            duration_s=0.0,
            deadband_mhz=250.0,
        )
    fields = [f for f, _ in caught.value.reasons]
    assert fields == ["capacity_mw", "duration_s", "start", "full_activation_mhz"]


def test_afrr_is_held_around_its_setpoint_stream() -> None:
    request = ServiceRequest.of(Product.AFRR, capacity_w=1e5, start=T0, duration_s=600.0)
    assert (request.direction, request.spec.local_frequency) == ("symmetric", False)
    assert request.spec.full_activation_s == 300.0  # PICASSO: 5 min full activation time


def test_fcr_curve_points() -> None:
    """A droop through 50.0 Hz, silent inside 49.99-50.01 Hz: 0 W at the dead-band's edge,
    the droop's value 0.1 mHz past it (10.1 of 200 mHz), full at 200 mHz."""
    curve = share_curve(fcr(), discharge_w=5_000.0, charge_w=4_000.0)
    assert [(p.frequency_hz, p.power_w) for p in curve] == [
        (49.8, -5_000.0),
        (49.9899, -252.5),
        (49.99, 0.0),
        (50.01, 0.0),
        (50.0101, 202.0),
        (50.2, 4_000.0),
    ]


def at(curve: list[CurvePoint], freq_hz: float) -> float:
    """The curve as the station reads it (``v2g_gateway.control.frequency``)."""
    hz, w = tuple(p.frequency_hz for p in curve), tuple(p.power_w for p in curve)
    return FreqWattCurve(hz, w).value_w(freq_hz)


@settings(max_examples=200, deadline=None)
@given(deviation_mhz=st.floats(10.1, 250.0), share_w=st.floats(100.0, 22_000.0))
def test_fcr_is_proportional_to_the_deviation_from_nominal(
    deviation_mhz: float, share_w: float
) -> None:
    """ENTSO-E / FCR Cooperation: activation linear in the deviation from 50.0 Hz (50 % at
    49.9 Hz, not the 47 % a line from the dead-band's edge gives), full from 200 mHz."""
    curve = share_curve(fcr(), discharge_w=share_w, charge_w=share_w)
    expected_w = share_w * min(deviation_mhz, 200.0) / 200.0
    assert at(curve, 50.0 - deviation_mhz / 1000) == pytest.approx(-expected_w, abs=0.2)
    assert at(curve, 50.0 + deviation_mhz / 1000) == pytest.approx(expected_w, abs=0.2)
    assert at(curve, 49.9) == pytest.approx(-share_w / 2, abs=0.1)


@settings(max_examples=100, deadline=None)
@given(below_mhz=st.floats(0.1, 500.0), share_w=st.floats(100.0, 22_000.0))
def test_ffr_is_full_once_the_frequency_is_below_its_activation_level(
    below_mhz: float, share_w: float
) -> None:
    """Fingrid: "activated in full within the required time when the frequency falls below"
    49.7 Hz (a trigger product, no proportional part); nothing above it."""
    ffr = ServiceRequest.of(Product.FFR, capacity_w=1e5, start=T0, duration_s=60.0)
    curve = share_curve(ffr, discharge_w=share_w, charge_w=0.0)
    assert at(curve, 49.7 - below_mhz / 1000) == pytest.approx(-share_w, abs=0.1)
    assert at(curve, 49.7) == 0.0
    assert at(curve, 50.0) == 0.0


def test_dynamic_containment_curve_has_its_knee_at_200_mhz() -> None:
    dc = ServiceRequest.of(Product.DYNAMIC_CONTAINMENT, capacity_w=1e5, start=T0, duration_s=60.0)
    curve = share_curve(dc, discharge_w=10_000.0, charge_w=10_000.0)
    assert [(p.frequency_hz, p.power_w) for p in curve] == [
        (49.5, -10_000.0),
        (49.8, -500.0),
        (49.985, 0.0),
        (50.015, 0.0),
        (50.2, 500.0),
        (50.5, 10_000.0),
    ]


def test_a_discharge_only_curve_ends_at_the_dead_band() -> None:
    curve = share_curve(fcr(direction="discharge"), discharge_w=5_000.0, charge_w=0.0)
    assert [(p.frequency_hz, p.power_w) for p in curve] == [
        (49.8, -5_000.0),
        (49.9899, -252.5),
        (49.99, 0.0),
    ]


@pytest.mark.parametrize("direction", ["symmetric", "discharge", "charge"])
def test_a_dead_band_off_the_grid_is_rounded_outward_and_the_step_still_reaches_the_share(
    direction: str,
) -> None:
    # hypothesis found it: FFR with a 1.75 mHz dead-band gave a curve of 0 W points only
    r = ServiceRequest.of(
        "ffr", capacity_w=1e6, start=T0, duration_s=60.0, direction=direction,  # type: ignore[arg-type]
        deadband_mhz=1.75, nominal_hz=50.0,
    )  # fmt: skip
    curve = share_curve(
        r, discharge_w=1_000.0 * (r.discharge_w > 0), charge_w=1_000.0 * (r.charge_w > 0)
    )
    points = [(p.frequency_hz, p.power_w) for p in curve]
    low = [(49.9981, -1_000.0), (49.9982, 0.0)]
    high = [(50.0018, 0.0), (50.0019, 1_000.0)]
    expected = {"symmetric": low + high, "discharge": low, "charge": high}[direction]
    assert points == expected


@pytest.mark.parametrize(
    ("product", "changes", "field"),
    [
        ("fcr", {"deadband_mhz": 199.95, "full_activation_mhz": 200.0}, "full_activation_mhz"),
        ("dynamic_containment", {"deadband_mhz": 199.9}, "deadband_mhz"),
    ],
)
def test_points_closer_than_the_curve_resolution_are_refused(
    product: Product, changes: dict[str, float], field: str
) -> None:
    with pytest.raises(InvalidServiceError) as caught:
        ServiceRequest.of(product, capacity_w=1e6, start=T0, duration_s=60.0, **changes)  # type: ignore[arg-type]
    assert field in [f for f, _ in caught.value.reasons]


def test_no_dead_band_gives_one_nominal_point() -> None:
    curve = share_curve(fcr(deadband_mhz=0.0), discharge_w=1_000.0, charge_w=1_000.0)
    assert [p.frequency_hz for p in curve] == [49.8, 50.0, 50.2]


@settings(max_examples=200, deadline=None)
@given(
    product=st.sampled_from([p for p, s in PRODUCTS.items() if s.local_frequency]),
    direction=st.sampled_from(["symmetric", "discharge", "charge"]),
    share_w=st.floats(1.0, 50_000.0),
    deadband=st.floats(0.0, 100.0),
    nominal_hz=st.sampled_from([50.0, 60.0]),
)
def test_every_curve_is_valid_ocpp_and_reaches_the_share(
    product: Product, direction: str, share_w: float, deadband: float, nominal_hz: float
) -> None:
    spec = PRODUCTS[product]
    full = max(spec.full_activation_mhz, (spec.knee or (0.0, 0.0))[0] + 1.0)
    r = ServiceRequest.of(
        product, capacity_w=1e6, start=T0, duration_s=60.0, direction=direction,  # type: ignore[arg-type]
        deadband_mhz=min(deadband, spec.knee[0] - 1.0) if spec.knee else deadband,
        full_activation_mhz=full, nominal_hz=nominal_hz,
    )  # fmt: skip
    curve = share_curve(
        r, discharge_w=share_w * (r.discharge_w > 0), charge_w=share_w * (r.charge_w > 0)
    )
    hz = [p.frequency_hz for p in curve]
    w = [p.power_w for p in curve]
    assert 2 <= len(curve) <= 20
    assert all(a < b for a, b in itertools.pairwise(hz)), "Hz strictly ascending"
    assert all(a <= b for a, b in itertools.pairwise(w)), "monotone: low Hz discharges"
    lo, hi = curve[0], curve[-1]
    assert lo.power_w == (pytest.approx(-share_w, abs=0.1) if r.discharge_w else 0.0)
    assert hi.power_w == (pytest.approx(share_w, abs=0.1) if r.charge_w else 0.0)
    inside = [p for p in curve if abs(p.frequency_hz - nominal_hz) * 1000 <= r.deadband_mhz + 1e-6]
    assert all(p.power_w == 0.0 for p in inside), "no response inside the dead-band"
