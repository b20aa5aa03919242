"""``vpp-demo``'s arguments are checked before anything starts: a bad value is an argparse
error (exit 2) naming the flag and echoing the value, and nothing is started. The main
entry point is run, with the stack patched to fail the test if it is ever reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from v2g_sim import demo
from v2g_sim.scenario import build_scenario


@pytest.fixture(autouse=True)
def no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    def started(*args: object, **kw: object) -> None:
        raise AssertionError("the stack was started")

    monkeypatch.setattr(demo, "DemoStack", started)
    monkeypatch.setattr(demo.asyncio, "run", started)


@pytest.mark.parametrize(
    ("argv", "flag", "said"),
    [
        (["--control-period-s", "0"], "--control-period-s", "'0': Input should be greater"),
        (["--control-period-s", "abc"], "--control-period-s", "'abc': not a finite number"),
        (["--per-host", "0"], "--per-host", "'0' is not an integer 1..247"),
        (["--per-host", "300"], "--per-host", "'300' is not an integer 1..247"),
        (["--power-mw", "-1"], "--power-mw", "'-1': Input should be greater than or equal"),
        (["--power-mw", "5e-324"], "--power-mw", "'5e-324': Input should be greater"),
        (["--power-mw", "nan"], "--power-mw", "'nan': not a finite number"),
        (["--window-min", "0"], "--window-min", "'0' is not a number > 0"),
        (["--speed", "-3"], "--speed", "'-3' is not a number > 0"),
        (["--speed", "inf"], "--speed", "'inf' is not a number > 0"),
        (["--stations", "0"], "--stations", "'0' is not an integer >= 1"),
        (["--stations", "1.5"], "--stations", "'1.5' is not an integer >= 1"),
        (["--unplug-share", "1.5"], "--unplug-share", "'1.5' is not a share from 0 to 1"),
        (["--unplug-share", "-0.1"], "--unplug-share", "'-0.1' is not a share from 0 to 1"),
        (
            ["--window-min", "1441", "--speed", "1"],
            "--window-min/--speed",
            "1441 min at speed 1 is a 86460 s window: Input should be less than or equal to 86400",
        ),
    ],
)
def test_bad_value_is_refused_at_parse_time(
    argv: list[str], flag: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        demo.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: {said}" in err, err


@pytest.mark.parametrize("flag", ["--output", "--state-dir"])
def test_a_directory_that_cannot_be_written_is_refused_before_the_run(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found at parse time, not when the report is saved after the whole run."""
    a_file = tmp_path / "report.json"
    a_file.write_text("{}")
    with pytest.raises(SystemExit) as exited:
        demo.main([flag, str(a_file / "out")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: '{a_file}/out': {a_file} is not a directory" in err


def test_good_values_reach_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def run(coro: object) -> int:
        seen["args"] = coro.cr_frame.f_locals["args"]  # type: ignore[attr-defined]
        coro.close()  # type: ignore[attr-defined]
        return 0

    monkeypatch.setattr(demo.asyncio, "run", run)
    argv = ["--unplug-share", "0", "--per-host", "247", "--control-period-s", "0.002"]
    assert demo.main([*argv, "--power-mw", "0.001", "--window-min", "1440", "--speed", "1"]) == 0
    args = seen["args"]
    assert (args.unplug_share, args.per_host, args.control_period_s) == (0.0, 247, 0.002)


def test_unplug_share_zero_unplugs_none_and_a_small_share_at_least_one() -> None:
    ids = ["CS-0001"]
    assert build_scenario(ids, unplug_share=0.0, seed=1).unplugs == ()
    many = [f"CS-{i:04d}" for i in range(1, 21)]
    assert len(build_scenario(many, unplug_share=0.01, seed=1).unplugs) == 1
    with pytest.raises(ValueError, match=r"unplug_share must be within 0\.\.1, got 2"):
        build_scenario(ids, unplug_share=2)
