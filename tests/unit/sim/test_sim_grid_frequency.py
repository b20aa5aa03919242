"""The simulator's grid-frequency source (steps, ramps, replayed traces, noise) and the
modules of a site reporting it in their SunSpec Hz point."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from tests.unit.sim.test_sim_sunspec_image import _model_values
from v2g_sim.charger import SimulatedCharger
from v2g_sim.cli import main
from v2g_sim.control import handle_request
from v2g_sim.grid_frequency import GridFrequency, parse_trace_csv


def test_a_step_holds_the_nominal_until_it_and_the_new_value_after() -> None:
    grid = GridFrequency().step(at_s=10.0, to_hz=49.5)
    assert [grid.freq_hz(t) for t in (0.0, 9.999, 10.0, 500.0)] == [50.0, 50.0, 49.5, 49.5]


def test_a_ramp_is_linear_and_then_holds() -> None:
    grid = GridFrequency().step(at_s=1.0, to_hz=49.8).ramp(at_s=5.0, to_hz=50.2, over_s=4.0)
    assert grid.freq_hz(4.0) == 49.8
    assert grid.freq_hz(7.0) == pytest.approx(50.0)
    assert grid.freq_hz(9.0) == pytest.approx(50.2)
    assert grid.freq_hz(60.0) == pytest.approx(50.2)


def test_a_replayed_trace_passes_through_its_samples_and_interpolates_between() -> None:
    samples = [(i / 10, 50.0 - 0.01 * i) for i in range(50)]  # 10 Hz, falling 0.1 Hz/s
    grid = GridFrequency().replay(samples, at_s=100.0)
    for t, f in samples:
        assert grid.freq_hz(100.0 + t) == pytest.approx(f)
    assert grid.freq_hz(100.05) == pytest.approx(49.995)
    assert grid.freq_hz(99.0) == 50.0


def test_a_later_event_replaces_the_rest_of_an_earlier_one() -> None:
    grid = GridFrequency().ramp(at_s=0.0, to_hz=49.0, over_s=10.0).step(at_s=5.0, to_hz=50.2)
    assert grid.freq_hz(2.5) == pytest.approx(49.75)  # the ramp until the step
    assert grid.freq_hz(7.0) == 50.2  # not the ramp's remainder
    assert grid.freq_hz(20.0) == 50.2
    earlier = GridFrequency().step(at_s=5.0, to_hz=49.0).step(at_s=4.0, to_hz=49.8)
    assert (earlier.freq_hz(3.0), earlier.freq_hz(6.0)) == (50.0, 49.8)


def test_noise_is_deterministic_for_a_seed_and_has_the_asked_spread() -> None:
    grid = GridFrequency(noise_hz=0.01, seed=3)
    values = [grid.freq_hz(t / 100) for t in range(4000)]
    again = [GridFrequency(noise_hz=0.01, seed=3).freq_hz(t / 100) for t in range(4000)]
    assert values == again
    assert statistics.fmean(values) == pytest.approx(50.0, abs=0.001)
    assert statistics.stdev(values) == pytest.approx(0.01, rel=0.1)
    assert GridFrequency(noise_hz=0.01, seed=4).freq_hz(0.5) != grid.freq_hz(0.5)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: GridFrequency().ramp(at_s=1.0, to_hz=49.0, over_s=0.0), "over_s > 0"),
        (lambda: GridFrequency().step(at_s=1.0, to_hz=float("nan")), "finite"),
        (lambda: GridFrequency().step(at_s=1.0, to_hz=0.0), "> 0 Hz"),
        (lambda: GridFrequency().replay([], at_s=0.0), "empty trace"),
        (lambda: GridFrequency(noise_hz=-1.0), "noise_hz"),
    ],
)
def test_an_impossible_schedule_is_refused_with_its_reason(build: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        build()  # type: ignore[operator]


def test_trace_csv_header_comments_and_errors() -> None:
    text = "t_s,freq_hz\n# recorded 2026-11-21\n0.0,50.01\n0.1,49.98\n"
    assert parse_trace_csv(text) == [(0.0, 50.01), (0.1, 49.98)]
    with pytest.raises(ValueError, match=r"line 3: expected t_s,freq_hz"):
        parse_trace_csv("0.0,50\n0.1,50\nx,y\n")
    with pytest.raises(ValueError, match=r"line 2: time 0\.0 s goes backwards"):
        parse_trace_csv("0.1,50\n0.0,50\n")
    with pytest.raises(ValueError, match="no samples"):
        parse_trace_csv("t_s,freq_hz\n")


def test_the_module_reports_the_sites_frequency_in_its_sunspec_hz_point() -> None:
    charger = SimulatedCharger.create(grid=GridFrequency().step(at_s=1.0, to_hz=49.5))
    assert _model_values(charger.image, 701)["Hz"] == 50.0
    charger.model.step(1.0)
    assert _model_values(charger.image, 701)["Hz"] == 49.5


def test_the_grid_command_moves_every_module_of_the_site() -> None:
    chargers = {i: SimulatedCharger.create(i, seed=i) for i in (1, 2)}
    resp = handle_request(chargers, {"cmd": "grid", "freq_hz": 49.5})
    assert resp == {"ok": True, "grid_freq_hz": [49.5, 49.5]}
    resp = handle_request(chargers, {"cmd": "grid", "freq_hz": 50.5, "ramp_s": 2.0})
    handle_request(chargers, {"cmd": "step", "seconds": 1.0})
    assert [c.model.grid_freq_hz for c in chargers.values()] == pytest.approx([50.0, 50.0])
    trace = [[0.0, 49.9], [0.1, 49.8]]
    handle_request(chargers, {"cmd": "grid", "trace": trace})
    handle_request(chargers, {"cmd": "step", "seconds": 0.1})
    assert [c.model.grid_freq_hz for c in chargers.values()] == pytest.approx([49.8, 49.8])
    bad = handle_request(chargers, {"cmd": "grid", "freq_hz": -1.0})
    assert bad["ok"] is False
    assert "> 0 Hz" in bad["error"]


def test_the_cli_grid_command_sends_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, object]] = []

    class Client:
        def __init__(self, path: str) -> None: ...
        def __enter__(self) -> Client:
            return self

        def __exit__(self, *exc: object) -> None: ...
        def request(self, cmd: str, **extra: object) -> dict[str, object]:
            sent.append({"cmd": cmd, **extra})
            return {"ok": True}

    monkeypatch.setattr("v2g_sim.cli.SimControlClient", Client)
    trace = tmp_path / "trace.csv"
    trace.write_text("t_s,freq_hz\n0,50\n0.1,49.9\n")
    assert main(["grid", "--trace", str(trace), "--noise-hz", "0.005"]) == 0
    assert main(["grid", "--freq-hz", "49.5", "--ramp-s", "1"]) == 0
    assert sent == [
        {"cmd": "grid", "trace": [(0.0, 50.0), (0.1, 49.9)], "noise_hz": 0.005},
        {"cmd": "grid", "freq_hz": 49.5, "ramp_s": 1.0},
    ]
