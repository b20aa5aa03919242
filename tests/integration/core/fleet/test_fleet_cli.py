"""``vpp-core stations …`` and ``db migrate`` on a real database file (in-process ``main``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from vpp_core.app import main

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path, fleet_db_url: str) -> Path:
    path = tmp_path / "core.toml"
    path.write_text(f'[fleet]\ndatabase_url = "{fleet_db_url}"\n')
    return path


def test_station_registry_cli(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = ["--config", str(config)]
    assert main(["db", "migrate", *cfg]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    add = ["stations", "add", "CS-1", "--profile", "2", "--site", "s1", "--region", "r1"]
    assert main([*add, "--password-stdin", *cfg]) == 0
    assert (
        main(["stations", "add", "CS-2", "--profile", "3", "--site", "s2", "--region", "r2", *cfg])
        == 0
    )
    capsys.readouterr()
    gen = ["stations", "add", "CS-3", "--profile", "2", "--site", "s", "--region", "r"]
    assert main([*gen, "--generate-password", *cfg]) == 0
    assert "password: " in capsys.readouterr().out
    assert main(["stations", "disable", "CS-1", *cfg]) == 0
    assert (
        main(["stations", "add", "CS-1", "--profile", "3", "--site", "s", "--region", "r", *cfg])
        == 1
    )
    assert "already registered" in capsys.readouterr().err
    assert (
        main(["stations", "add", "CS-9", "--profile", "2", "--site", "s", "--region", "r", *cfg])
        == 1
    )
    assert "needs a password" in capsys.readouterr().err
    assert main(["stations", "enable", "nope", *cfg]) == 1
    capsys.readouterr()
    assert main(["stations", "list", "--json", *cfg]) == 0
    listed = {s["station_id"]: s for s in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"CS-1", "CS-2", "CS-3"}
    assert listed["CS-1"]["enabled"] is False
    assert listed["CS-2"]["security_profile"] == 3
    assert "password_hash" not in listed["CS-1"]  # never printed


def test_config_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "core.toml"
    bad.write_text("[csms]\nport = 'eighty'\nbogus = 1\n")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(bad), "stations", "list"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "csms.port" in err
    assert "csms.bogus: unknown key" in err
