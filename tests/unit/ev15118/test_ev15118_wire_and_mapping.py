"""The SECC <-> gateway wire protocol and the mapping both ways (docs/iso15118.md)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from v2g_ev15118.mapping import (
    ac_dynamic_target_w,
    charge_only_reason,
    dc_dynamic_limits,
    evse_target_w,
    needs_fields,
    soc_pct,
)
from v2g_ev15118.session import SessionView
from v2g_ev15118.wire import (
    EvParams,
    EvPresent,
    EvseOffer,
    EvStopRequest,
    SessionEnded,
    SessionState,
    WireError,
    decode,
    encode,
)
from v2g_gateway.control.ports import EvChargingNeeds

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
BPT = EvParams(
    evcc_id="WMIV1234567890ABCDEX",
    protocol="ISO_15118_20_DC",
    service="DC_BPT",
    control_mode="Dynamic",
    max_charge_w=11_000.0,
    min_charge_w=1_400.0,
    max_discharge_w=10_000.0,
    min_discharge_w=1_400.0,
    battery_capacity_wh=60_000.0,
    target_energy_wh=18_000.0,
    max_energy_wh=27_000.0,
    min_energy_wh=-18_000.0,
    max_v2x_energy_wh=27_000.0,
    min_v2x_energy_wh=-18_000.0,
    target_soc_pct=80.0,
    min_soc_pct=20.0,
    present_soc_pct=50.0,
    departure_in_s=3600.0,
)
ISO2 = dataclasses.replace(BPT, protocol="ISO_15118_2", service="charge-only", control_mode=None)


def offer(target_w: float, *, charge_w: float = 11_000.0, discharge_w: float = 10_000.0,
          stop: bool = False) -> EvseOffer:  # fmt: skip
    return EvseOffer(target_w, charge_w, discharge_w, 0.0, stop)


@pytest.mark.parametrize(
    "message",
    [
        SessionState("DCChargeLoop", "ISO_15118_20_DC"),
        BPT,
        EvPresent(61.0, -7000.0, 400.0),
        EvStopRequest("pause"),
        SessionEnded("DCChargeLoop", "TimeoutError", "EV_COMM_TIMEOUT"),
        offer(-7000.0),
        EvseOffer(0.0, 11_000.0, 10_000.0, 0.0, stop=True, emergency=True),
    ],
)
def test_every_message_round_trips_as_one_line(message: object) -> None:
    line = encode(message)  # type: ignore[arg-type]
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode(line) == message


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"not json\n", "not JSON"),
        (b"[1]\n", "not a JSON object"),
        (b'{"v": 2, "type": "ev_stop", "action": "pause"}\n', "version"),
        (b'{"v": 1, "type": "nope"}\n', "unknown message type"),
        (b'{"v": 1, "type": "ev_stop"}\n', "['action'] missing or unknown"),
        (b'{"v": 1, "type": "ev_stop", "action": "pause", "x": 1}\n', "['x'] missing"),
    ],
)
def test_a_bad_line_is_a_wire_error_naming_the_problem(line: bytes, says: str) -> None:
    with pytest.raises(WireError) as caught:
        decode(line)
    assert says in str(caught.value)


def test_bpt_params_become_the_needs_the_station_reports() -> None:
    needs = EvChargingNeeds(**needs_fields(BPT, now=NOW))
    assert needs.bidirectional
    assert (needs.max_charge_w, needs.max_discharge_w) == (11_000.0, 10_000.0)
    assert needs.min_discharge_w == 1_400.0
    assert needs.ev_min_v2x_energy_wh == -18_000.0
    assert needs.departure == NOW + timedelta(hours=1)
    assert (needs.target_soc_pct, needs.min_soc_pct) == (80.0, 20.0)


@pytest.mark.parametrize(
    ("ev", "reason"),
    [
        (ISO2, "ISO_15118_2 has no bidirectional power transfer"),
        (dataclasses.replace(BPT, protocol="DIN_SPEC_70121"), "DIN_SPEC_70121 has no"),
        (dataclasses.replace(BPT, service="DC"), "selected the DC service"),
        (dataclasses.replace(BPT, max_discharge_w=0.0), "declared no discharge power"),
    ],
)
def test_a_charge_only_session_declares_no_discharge_and_says_why(
    ev: EvParams, reason: str
) -> None:
    assert reason in str(charge_only_reason(ev))
    needs = EvChargingNeeds(**needs_fields(ev, now=NOW))
    assert not needs.bidirectional
    assert (needs.max_discharge_w, needs.min_discharge_w) == (0.0, 0.0)
    assert needs.ev_min_v2x_energy_wh is None
    assert evse_target_w(offer(-7000.0), ev) == 0.0


@pytest.mark.parametrize(
    ("target_w", "charge_w", "discharge_w", "expected_w"),
    [
        (-7000.0, 11_000.0, 10_000.0, -7000.0),
        (-12_000.0, 11_000.0, 20_000.0, -10_000.0),  # the EV's own maximum
        (-7000.0, 11_000.0, 3000.0, -3000.0),  # the station's bound (law, CSMS)
        (-7000.0, 11_000.0, 0.0, 0.0),  # NotifyAllowedEnergyTransfer without BPT
        (15_000.0, 11_000.0, 10_000.0, 11_000.0),
        (5000.0, 4000.0, 10_000.0, 4000.0),
    ],
)
def test_the_target_is_the_setpoint_within_every_limit(
    target_w: float, charge_w: float, discharge_w: float, expected_w: float
) -> None:
    o = offer(target_w, charge_w=charge_w, discharge_w=discharge_w)
    assert evse_target_w(o, BPT) == expected_w
    assert ac_dynamic_target_w(o, BPT) == expected_w


def test_stop_means_zero() -> None:
    assert evse_target_w(offer(-7000.0, stop=True), BPT) == 0.0


def test_dc_dynamic_limits_pin_the_window_on_the_target() -> None:
    discharge = dc_dynamic_limits(offer(-7000.0), BPT, voltage_v=400.0)
    assert (discharge.max_charge_w, discharge.max_discharge_w) == (0.0, 7000.0)
    assert discharge.min_discharge_w == 7000.0
    assert discharge.max_discharge_a == pytest.approx(17.5)
    charge = dc_dynamic_limits(offer(4000.0), BPT, voltage_v=400.0)
    assert (charge.max_charge_w, charge.min_charge_w, charge.max_discharge_w) == (4000.0, 0.0, 0.0)
    assert charge.max_charge_a == pytest.approx(10.0)


def test_the_soc_is_the_evs_latest_charge_loop_value() -> None:
    assert soc_pct(None, None) is None
    assert soc_pct(None, BPT) == 50.0
    assert soc_pct(EvPresent(49.0, -7000.0, 400.0), BPT) == 49.0
    assert soc_pct(EvPresent(None, -7000.0, 400.0), BPT) == 50.0


def test_energy_flows_only_in_the_charge_loop_and_a_timeout_holds_until_a_new_session() -> None:
    view = SessionView()
    assert view.hold() == "ISO 15118 session in no session"
    view.apply(SessionState("SessionSetup", "ISO_15118_20_DC"))
    view.apply(BPT)
    assert view.hold() == "ISO 15118 session in SessionSetup"
    view.apply(SessionState("DCChargeLoop", "ISO_15118_20_DC"))
    assert view.hold() is None
    view.apply(EvStopRequest("pause"))
    assert view.hold() == "EV paused"
    view.apply(SessionState("DCChargeLoop", "ISO_15118_20_DC"))
    view.apply(SessionEnded("DCChargeLoop", "TimeoutError occurred", "EV_COMM_TIMEOUT"))
    assert view.hold() == "EV_COMM_TIMEOUT"
    view.apply(SessionState("SupportedAppProtocol", "ISO_15118_20_DC"))
    assert view.hold() == "EV_COMM_TIMEOUT"  # held until the next session is set up
    view.apply(SessionState("SessionSetup", "ISO_15118_20_DC"))
    assert view.params is None
    assert view.hold() == "ISO 15118 session in SessionSetup"
