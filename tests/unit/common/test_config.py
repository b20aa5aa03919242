"""Config errors name the file, the dotted key and the reason; daemons exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from v2g_common.config import (
    ConfigError,
    ConfigSection,
    exit_on_config_error,
    load_config,
)


class Serial(ConfigSection):
    port: str
    baudrate: int = 19200


class Limits(ConfigSection):
    ramp_w_per_s: float = Field(default=5000.0, gt=0)


class Sample(ConfigSection):
    serial: Serial
    limits: Limits = Limits()
    evses: list[Limits] = []


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    cfg = load_config(Sample, write(tmp_path, '[serial]\nport = "/dev/ttyS0"\n'))
    assert cfg.serial.port == "/dev/ttyS0"
    assert cfg.limits.ramp_w_per_s == 5000.0


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[serial]\nport = "x"\nbaud = 9600\n', "serial.baud", "unknown key"),
        ('[serial]\nport = "x"\nbaudrate = "fast"\n', "serial.baudrate", "integer"),
        ("[serial]\n", "serial.port", "required key is missing"),
        ('[serial]\nport="x"\n[limits]\nramp_w_per_s = -1\n', "limits.ramp_w_per_s", "greater"),
        ('[serial]\nport="x"\n[[evses]]\nramp_w_per_s = 0\n', "evses[0].ramp_w_per_s", "greater"),
        ("[serial\n", "(syntax)", ""),
    ],
)
def test_errors_name_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(Sample, path)
    keys = dict(info.value.problems)
    assert key in keys, info.value
    assert reason in keys[key]
    assert str(path) in str(info.value)


def test_missing_file_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Sample, tmp_path / "absent.toml")
    with pytest.raises(SystemExit) as stop:
        exit_on_config_error(info.value)
    assert stop.value.code == 2
    assert "absent.toml" in capsys.readouterr().err
