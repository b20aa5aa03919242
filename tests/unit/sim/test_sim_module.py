"""The power-module/EV model on an injected clock: lag, ramp, dead-band, limits, revert,
faults, energy accounting, determinism."""

from __future__ import annotations

import itertools
import math

import pytest

from v2g_sim.ev import EvSpec
from v2g_sim.module import ModuleSpec, PowerModuleModel


def _model(**spec: float) -> PowerModuleModel:
    model = PowerModuleModel(spec=ModuleSpec(**spec), seed=7)
    model.plug_in(EvSpec(soc_pct=50.0))
    return model


def test_first_order_lag_toward_setpoint() -> None:
    model = _model(lag_tau_s=0.8, ramp_w_per_s=1e9, deadband_w=0.0)
    model.command_setpoint(-7000.0)
    for t in (0.1, 0.5, 1.0, 2.0, 4.0):
        model.step(t - model.now_s)
        assert model.power_w == pytest.approx(-7000.0 * (1 - math.exp(-t / 0.8)), abs=1e-6)


def test_ramp_limit_caps_the_rate_of_change() -> None:
    model = _model(lag_tau_s=0.01, ramp_w_per_s=1000.0, deadband_w=0.0)
    model.command_setpoint(5000.0)
    model.step(2.0)
    assert model.power_w == pytest.approx(2000.0, abs=1e-6)


def test_dead_band_ignores_small_changes_but_always_honours_zero() -> None:
    model = _model(lag_tau_s=0.05, deadband_w=50.0)
    model.command_setpoint(3000.0)
    model.step(5.0)
    model.command_setpoint(3030.0)
    model.step(5.0)
    assert model.power_w == pytest.approx(3000.0, abs=0.01)
    model.command_setpoint(3100.0)
    model.step(5.0)
    assert model.power_w == pytest.approx(3100.0, abs=0.01)
    model.command_setpoint(0.0)
    model.step(5.0)
    assert abs(model.power_w) < 0.01


def test_limits_of_module_ev_and_soc() -> None:
    model = PowerModuleModel(spec=ModuleSpec(rated_discharge_w=9000.0))
    model.plug_in(EvSpec(max_discharge_w=7000.0, soc_pct=20.5, min_soc_pct=20.0))
    model.command_setpoint(-11000.0)
    assert model.effective_setpoint_w() == -7000.0
    model.step(300.0)  # discharging until the SoC floor
    assert model.soc_pct is not None
    assert model.soc_pct <= 20.01
    assert model.effective_setpoint_w() == 0.0


def test_no_power_without_ev_energized_or_contactor() -> None:
    model = _model()
    model.command_setpoint(5000.0)
    model.energized = False
    assert model.effective_setpoint_w() == 0.0
    model.energized = True
    model.contactor_closed = False
    assert model.effective_setpoint_w() == 0.0
    model.contactor_closed = True
    model.plug_out()
    assert model.effective_setpoint_w() == 0.0


def test_revert_timer_takes_the_module_to_revert_power_without_new_writes() -> None:
    model = _model(lag_tau_s=0.1)
    model.program_revert(enabled=True, timeout_s=5.0, revert_power_w=0.0)
    model.command_setpoint(-7000.0)
    model.step(4.9)
    assert model.setpoint_w == -7000.0
    assert model.revert_remaining_s == pytest.approx(0.1, abs=1e-6)
    model.step(0.2)
    assert model.setpoint_w == 0.0
    model.step(3.0)
    assert abs(model.power_w) < 1.0


def test_each_setpoint_write_restarts_the_revert_timer() -> None:
    model = _model()
    model.program_revert(enabled=True, timeout_s=2.0, revert_power_w=0.0)
    for _ in range(5):
        model.command_setpoint(-3000.0)
        model.step(1.5)
    assert model.setpoint_w == -3000.0


@pytest.mark.parametrize("kind", ["ground_fault", "over_temp", "frequency_excursion"])
def test_trip_faults_cut_output_at_once(kind: str) -> None:
    model = _model()
    model.command_setpoint(-7000.0)
    model.step(5.0)
    model.inject_fault(kind)
    assert model.power_w == 0.0
    model.step(1.0)
    assert model.power_w == 0.0
    model.clear_fault(kind)
    model.step(5.0)
    assert model.power_w < -6000.0


def test_comms_timeout_does_not_trip_the_module() -> None:
    model = _model()
    model.command_setpoint(-7000.0)
    model.inject_fault("comms_timeout")
    model.step(5.0)
    assert model.comms_down
    assert model.power_w < -6000.0


def test_energy_registers_count_exactly_what_flowed_both_ways() -> None:
    model = _model(lag_tau_s=0.01, ramp_w_per_s=1000.0, deadband_w=0.0)
    samples = [(0.0, 0.0)]
    for setpoint, seconds in ((2000.0, 2.5), (-2000.0, 4.5)):
        model.command_setpoint(setpoint)
        for _ in range(round(seconds / 0.05)):
            model.step(0.05)
            samples.append((model.now_s, model.power_w))
    net_ws = sum((p0 + p1) / 2 * (t1 - t0) for (t0, p0), (t1, p1) in itertools.pairwise(samples))
    net_wh = model.energy_absorbed_wh - model.energy_injected_wh
    assert net_wh == pytest.approx(net_ws / 3600, abs=1e-9)
    # ramp up ~2000 W·s, hold, ramp through zero: both registers moved by about that much
    assert model.energy_absorbed_wh == pytest.approx((2000 + 1000 + 2000) / 3600, rel=0.02)
    assert model.energy_injected_wh == pytest.approx((2000 + 1000) / 3600, rel=0.02)


def test_soc_follows_dc_energy_with_conversion_losses() -> None:
    model = PowerModuleModel(spec=ModuleSpec(efficiency=0.9, lag_tau_s=0.001, ramp_w_per_s=1e9))
    model.plug_in(EvSpec(battery_capacity_wh=10_000.0, soc_pct=50.0))
    model.command_setpoint(-3600.0)
    model.step(1000.0)
    delivered_wh = model.energy_injected_wh
    assert model.soc_pct == pytest.approx(50.0 - delivered_wh / 0.9 / 10_000 * 100, rel=1e-3)


def test_same_seed_same_trajectory() -> None:
    runs = []
    for _ in range(2):
        model = _model()
        model.command_setpoint(-5000.0)
        model.step(3.0)
        runs.append((model.power_w, model.grid_freq_hz, model.grid_voltage_v))
    assert runs[0] == runs[1]
    other = PowerModuleModel(seed=8)
    other.step(3.0)
    assert other.grid_freq_hz != runs[0][1]


def test_bad_input_is_refused() -> None:
    model = _model()
    with pytest.raises(ValueError, match="unknown fault"):
        model.inject_fault("meteor")
    with pytest.raises(ValueError, match="forward"):
        model.step(-1.0)
    with pytest.raises(ValueError, match="soc"):
        EvSpec(soc_pct=10.0, min_soc_pct=20.0)
