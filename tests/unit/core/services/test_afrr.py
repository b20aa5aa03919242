"""aFRR in the core: each session's CentralFrequency profile (OCA 2.1 schema-valid) carries
its share as a v2xSignalWattCurve; one signal asks the fleet for the operator's setpoint;
setpoints are relayed as AFRRSignal once per station, recorded requested vs delivered, refused
beyond the contract or on a service that is not aFRR or is over; a silent stream gets signal 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.doubles.oca_schemas import SchemaBook
from tests.unit.core.dispatch.scripted_fleet import ScriptedFleet, VirtualClock, until
from v2g_common.ocpp21.messages import call
from v2g_common.ocpp21.payloads import codec_for
from v2g_gateway.station.signal_profiles import SignalWattCurve
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.dispatch.model import SessionKey
from vpp_core.services.afrr import SIGNAL_FULL, afrr_signal, check_setpoint, signal_watt_curve
from vpp_core.services.allocation import SessionShare
from vpp_core.services.errors import InvalidServiceError, ServiceStateError
from vpp_core.services.manager import FrequencyServices, HeldService, ServiceStatus
from vpp_core.services.products import Product, ServiceRequest
from vpp_core.supervision import TaskSupervisor

CONFIG = DispatchConfig(command_timeout_s=1.0, control_period_s=1.0, afrr_stale_after_s=12.0)


def curve_w(points: list[dict[str, float]], signal: float) -> float:
    """The station's own reading of the curve (``v2g_gateway.station.signal_profiles``)."""
    return SignalWattCurve.from_points([(p["signal"], p["power"]) for p in points]).value_w(signal)


shares = st.lists(
    st.tuples(st.floats(0.0, 11000.0), st.floats(0.0, 11000.0)).filter(lambda t: sum(t) > 0),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(parts=shares, fraction=st.floats(-1.0, 1.0))
def test_one_signal_asks_the_fleet_for_the_setpoint(
    parts: list[tuple[float, float]], fraction: float
) -> None:
    holding = [
        SessionShare(SessionKey(f"CS{i}", 1, f"tx{i}"), round(d, 1), round(c, 1))
        for i, (d, c) in enumerate(parts)
    ]
    held_w = sum(s.discharge_w if fraction < 0 else s.charge_w for s in holding)
    requested_w = fraction * held_w
    signal = afrr_signal(requested_w, holding)
    assert -SIGNAL_FULL <= signal <= SIGNAL_FULL
    fleet_w = sum(curve_w(signal_watt_curve(s), signal) for s in holding)
    # 0.01 % signal steps: within half a step of the fleet's capacity (plus rounding).
    assert fleet_w == pytest.approx(requested_w, abs=held_w / SIGNAL_FULL / 2 + 1e-6)
    assert signal == 0 or (signal < 0) == (requested_w < 0)


def test_a_setpoint_beyond_what_is_held_is_sent_at_full_signal() -> None:
    holding = [SessionShare(SessionKey("CS0", 1, "tx0"), 5000.0, 5000.0)]
    assert afrr_signal(-8000.0, holding) == -SIGNAL_FULL
    assert afrr_signal(8000.0, []) == SIGNAL_FULL  # nobody holds it: full, nothing moves


def afrr(clock: VirtualClock, capacity_w: float = 15_000.0, **kw: str) -> ServiceRequest:
    return ServiceRequest.of(
        Product.AFRR, capacity_w=capacity_w, start=clock.now(), duration_s=600.0, **kw
    )


def test_a_setpoint_beyond_the_contract_is_refused_naming_the_field() -> None:
    request = afrr(VirtualClock(), direction="discharge")
    check_setpoint(request, -15_000.0)
    with pytest.raises(InvalidServiceError) as caught:
        check_setpoint(request, 1_000.0)  # charge: not held by a discharge-only service
    assert caught.value.reasons == [
        ("power_mw", "0.001 MW charge exceeds the service's 0 MW in that direction")
    ]
    with pytest.raises(InvalidServiceError, match=r"0\.016 MW discharge exceeds"):
        check_setpoint(request, -16_000.0)


@pytest.fixture
async def services(fleet: ScriptedFleet, clock: VirtualClock) -> AsyncIterator[FrequencyServices]:
    supervisor = TaskSupervisor(CollectorRegistry())
    async with FrequencyServices(fleet, fleet, clock, CONFIG, supervisor=supervisor) as s:
        await until(lambda: {(f"CS{i}", 1) for i in range(3)} <= s.leftovers.done, timeout_s=20)
        fleet.log.clear()
        yield s


async def holding(services: FrequencyServices, request: ServiceRequest) -> HeldService:
    held = services.create(request)
    await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
    return held


async def test_each_session_gets_a_schema_valid_central_frequency_profile(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    held = await holding(services, afrr(clock))
    book, codec = SchemaBook("ocpp2.1"), codec_for("ocpp2.1")
    sent = {station: args["profile"] for station, args in fleet.calls("set")}
    assert set(sent) == {"CS0", "CS1", "CS2"}
    for station, profile in sent.items():
        _, wire = codec.encode_request(call.SetChargingProfile(evse_id=1, charging_profile=profile))
        assert book.errors("SetChargingProfileRequest", wire) == []
        (period,) = profile["charging_schedule"][0]["charging_schedule_period"]
        share = next(s for s in held.plan.shares if s.key.station_id == station)
        assert period["operation_mode"] == "CentralFrequency"
        assert period["v2x_signal_watt_curve"] == signal_watt_curve(share)
        assert "v2x_freq_watt_curve" not in period
        assert (period["limit"], period["discharge_limit"]) == (share.charge_w, -share.discharge_w)


async def test_setpoints_are_relayed_once_per_station_and_recorded(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    held = await holding(services, afrr(clock))
    fleet.log.clear()
    first = await services.afrr.setpoint(held, -7_500.0)  # half the 15 kW held
    assert (first.signal, first.stations, first.accepted) == (-SIGNAL_FULL // 2, 3, 3)
    calls = fleet.calls("afrr")
    assert sorted(station for station, _ in calls) == ["CS0", "CS1", "CS2"]
    assert {a["signal"] for _, a in calls} == {-5000}
    assert {a["timestamp"] for _, a in calls} == {clock.now()}
    assert first.delivered_w is None  # in force

    await clock.advance(4.0)
    second = await services.afrr.setpoint(held, 3_000.0)
    assert second.signal == 2000
    assert first.delivered_w == pytest.approx(
        sum(s.present_power_w for s in fleet.sessions()), abs=1e-6
    )
    assert [p.requested_w for p in services.afrr.setpoints(held.service_id)] == [-7500.0, 3000.0]


async def test_a_silent_stream_gets_signal_0_from_the_core(
    fleet: ScriptedFleet, clock: VirtualClock, services: FrequencyServices
) -> None:
    held = await holding(services, afrr(clock))
    await services.afrr.setpoint(held, -15_000.0)
    fleet.log.clear()
    await clock.advance(11.0)
    assert fleet.calls("afrr") == []  # not yet stale
    await clock.advance(2.0)
    await until(lambda: len(fleet.calls("afrr")) == 3, timeout_s=20)
    assert {a["signal"] for _, a in fleet.calls("afrr")} == {0}
    last = services.afrr.setpoints(held.service_id)[-1]
    assert (last.stale, last.requested_w, last.signal) == (True, 0.0, 0)
    assert any("silent for" in e for e in held.events)
    await clock.advance(30.0)
    assert len(fleet.calls("afrr")) == 3  # signal 0 is sent once, not every period


async def test_setpoints_need_an_open_afrr_service(
    clock: VirtualClock, services: FrequencyServices
) -> None:
    fcr = ServiceRequest.of(Product.FCR, capacity_w=15_000.0, start=clock.now(), duration_s=600)
    held_fcr = await holding(services, fcr)
    with pytest.raises(ServiceStateError, match="is fcr, not afrr"):
        await services.afrr.setpoint(held_fcr, -1000.0)
    await services.end(held_fcr.service_id)
    held = await holding(services, afrr(clock))
    await services.end(held.service_id)
    with pytest.raises(ServiceStateError, match="is cancelled"):
        await services.afrr.setpoint(held, -1000.0)


async def test_the_window_end_records_the_last_delivery(
    clock: VirtualClock, services: FrequencyServices
) -> None:
    held = await holding(services, afrr(clock))
    await services.afrr.setpoint(held, -1000.0)
    await clock.advance(601.0)
    await until(lambda: held.status is ServiceStatus.ENDED, timeout_s=20)
    assert services.afrr.setpoints(held.service_id)[-1].delivered_w is not None
    assert held.request.end <= clock.now() - timedelta(seconds=1)
