"""``v2g-gateway`` command line: help, configuration errors (exit 2, dotted key and file),
and the documented sample configuration."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doubles.station_setup import station_config
from v2g_common.config import ConfigSection
from v2g_gateway.config import GatewayConfig, load_gateway_config
from v2g_gateway.control.config import ControlSection
from v2g_gateway.daemon import main

REPO = Path(__file__).resolve().parents[3]


def test_help_describes_the_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out
    assert "--check-config" in out


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        ("[control]\nramp_w_per_s = -5\n", "control.ramp_w_per_s", "greater than 0"),
        ("[control]\nramp_w_per_sec = 5\n", "control.ramp_w_per_sec", "unknown key"),
        ('[power_sensor]\nkind = "ina229"\n', "power_sensor.kind", "'ina229' is not available"),
        ('[contactor]\nkind = "gpiod"\ngpio_value_path = "/x"\n', "contactor", "gpio_value_path"),
        ("[control]\nsoc_min_pct = 90\nsoc_max_pct = 80\n", "control", "soc_min_pct"),
    ],
)
def test_config_errors_name_the_key_and_file_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, key: str, reason: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(toml)
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(path) in err
    line = next(line for line in err.splitlines() if line.strip().startswith(key + ":"))
    assert reason in line


def test_missing_file_is_a_config_error_too(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "v2g_gateway.daemon", "--config", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "none.toml" in result.stderr


def test_the_shipped_sample_config_is_valid_and_documents_every_key() -> None:
    sample = REPO / "etc" / "gateway.toml"
    config = load_gateway_config(sample)
    text = sample.read_text()
    for section_name in GatewayConfig.model_fields:
        assert f"[{section_name}]" in text, f"etc/gateway.toml lacks [{section_name}]"
        model = getattr(config, section_name)
        for key in type(model).model_fields:
            value = getattr(model, key)
            if isinstance(value, ConfigSection):  # a sub-table: [section.key] and its keys
                assert f"[{section_name}.{key}]" in text, f"etc/gateway.toml lacks it: {key}"
                for sub in type(value).model_fields:
                    assert f"{sub} =" in text, f"etc/gateway.toml lacks {section_name}.{key}.{sub}"
                continue
            assert f"{key} =" in text, f"etc/gateway.toml does not document {section_name}.{key}"
    # it names devices and certificates this machine lacks: tests/unit/gateway/test_paths_check.py


def test_installer_doc_explains_every_event_code() -> None:
    from v2g_gateway.control.events import EventCode

    doc = (REPO / "docs" / "installing-gateway.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`") for line in doc.splitlines() if line.startswith("| `")
    }
    assert {code.value for code in EventCode} <= rows


@pytest.mark.parametrize(("probe_s", "valid"), [(14.9, True), (15.0, False)])
def test_the_idle_link_probe_comes_before_the_comms_loss_ramp_may_start(
    tmp_path: Path, probe_s: float, valid: bool
) -> None:
    station = station_config("ws://csms.example/ocpp", tmp_path, contact_probe_interval_s=probe_s)
    build = functools.partial(
        GatewayConfig, control=ControlSection(comms_loss_timeout_s=30.0), station=station
    )
    if valid:
        build()
        return
    with pytest.raises(ValueError, match=r"contact_probe_interval_s \(15.0\) must be below half"):
        build()
