"""``v2g-gateway --check-config`` verifies that every file and device the configuration names
exists with the access the daemon needs, naming the key (exit 2); the control process checks
its devices the same way before opening them, so a start-up failure names the key too."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from v2g_gateway.config import load_gateway_config
from v2g_gateway.daemon import main
from v2g_gateway.devices import ControlProcessConfig
from v2g_gateway.hardware import open_hardware
from v2g_gateway.hw.errors import HardwareError
from v2g_gateway.paths_check import path_problems

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def tty() -> Iterator[str]:
    """A real character device to name as the serial port (a pty's slave side)."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def _config(tmp_path: Path, tty: str, **extra: str) -> Path:
    """A complete configuration whose every named file exists (simulated sensor and
    contactor: no /dev/i2c-N or GPIO chip on a test machine)."""
    for name in ("ca.pem", "cs.pem", "cs.key"):
        (tmp_path / name).write_text("x")
    values = {
        "port": tty,
        "socket": f"{tmp_path}/sim.sock",
        "ca_cert": f"{tmp_path}/ca.pem",
        "client_cert": f"{tmp_path}/cs.pem",
        "client_key": f"{tmp_path}/cs.key",
        "state_dir": f"{tmp_path}/state",
        "outbox": f"{tmp_path}/state/outbox.sqlite3",
        "uplink_ca": f"{tmp_path}/ca.pem",
        "uplink_key": f"{tmp_path}/cs.key",
        **extra,
    }
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[power_module]
port = "{values["port"]}"
[power_sensor]
kind = "simulated"
calibration_file = "{tmp_path}/no-calibration-yet.json"
[contactor]
kind = "simulated"
[simulator]
socket = "{values["socket"]}"
[station]
csms_url = "wss://csms.example.net/ocpp"
identity = "CS-0001"
security_profile = 3
ca_cert = "{values["ca_cert"]}"
client_cert = "{values["client_cert"]}"
client_key = "{values["client_key"]}"
state_dir = "{values["state_dir"]}"
[uplink]
site = "site-0001"
region = "region-1"
broker_host = "127.0.0.1"
ca_file = "{values["uplink_ca"]}"
cert_file = "{values["client_cert"]}"
key_file = "{values["uplink_key"]}"
outbox_path = "{values["outbox"]}"
"""
    )
    return path


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    """Exit status of ``--check-config`` and its problems by key."""
    try:
        status = main(["--config", str(path), "--check-config"])
    except SystemExit as exc:
        status = int(exc.code or 0)
    lines = [x.strip() for x in capsys.readouterr().err.splitlines()[1:]]
    return status, dict(x.split(": ", 1) for x in lines)


def test_the_sample_config_names_every_missing_device_and_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``etc/gateway.toml`` on a machine that is not a charger: it said ``ok`` once."""
    status, problems = _check(REPO / "etc" / "gateway.toml", capsys)
    assert status == 2
    assert problems["power_module.port"] == "/dev/ttyRS485 does not exist"
    assert problems["power_sensor.i2c_bus"] == "/dev/i2c-1 does not exist"
    assert problems["contactor.chip"] == "/dev/gpiochip0 does not exist"
    for key in ("station.ca_cert", "station.client_cert", "station.client_key"):
        assert problems[key].endswith("does not exist (nor does /etc/v2g-gateway/pki)"), key
    assert {"uplink.ca_file", "uplink.cert_file", "uplink.key_file"} <= set(problems)


def test_a_complete_config_is_ok(
    tmp_path: Path, tty: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, tty)
    assert main(["--config", str(path), "--check-config"]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: ok"


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ({"port": "{tmp}/ca.pem"}, "power_module.port", "{tmp}/ca.pem is not a character device"),
        ({"port": "/dev/ttyNOPE9"}, "power_module.port", "/dev/ttyNOPE9 does not exist"),
        ({"ca_cert": "{tmp}"}, "station.ca_cert", "{tmp} is not a regular file"),
        ({"uplink_key": "{tmp}/k.key"}, "uplink.key_file", "{tmp}/k.key does not exist"),
        ({"outbox": "{tmp}/ca.pem/outbox"}, "uplink.outbox_path", "{tmp}/ca.pem is not a dir"),
        ({"state_dir": "{tmp}/cs.key/st"}, "station.state_dir", "{tmp}/cs.key is not a dir"),
        ({"socket": "{tmp}/gone/sim.sock"}, "simulator.socket", "{tmp}/gone does not exist"),
    ],
)
def test_each_bad_path_is_named_by_its_key(
    tmp_path: Path,
    tty: str,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    key: str,
    reason: str,
) -> None:
    path = _config(tmp_path, tty, **{k: v.format(tmp=tmp_path) for k, v in change.items()})
    status, problems = _check(path, capsys)
    assert status == 2
    assert list(problems) == [key]
    assert problems[key].startswith(reason.format(tmp=tmp_path))


def test_the_iso15118_link_names_its_interpreter_interface_and_socket(
    tmp_path: Path, tty: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, tty)
    path.write_text(
        path.read_text()
        + f"""
[ev_link]
kind = "iso15118"
[ev_link.iso15118]
python = "{tmp_path}/venv/bin/python"
interface = "nope0"
socket = "{tmp_path}/ca.pem/secc.sock"
"""
    )
    status, problems = _check(path, capsys)
    assert status == 2
    assert problems == {
        "ev_link.iso15118.python": f"{tmp_path}/venv/bin/python does not exist (nor does "
        f"{tmp_path}/venv/bin)",
        "ev_link.iso15118.interface": "no network interface nope0",
        "ev_link.iso15118.socket": f"{tmp_path}/ca.pem is not a directory",
    }


def test_a_readable_calibration_file_and_an_absent_one_both_pass(tmp_path: Path, tty: str) -> None:
    config = load_gateway_config(_config(tmp_path, tty))
    assert path_problems(config) == []  # absent: identity calibration
    (tmp_path / "no-calibration-yet.json").mkdir()  # present, but not a file
    assert [k for k, _ in path_problems(config)] == ["power_sensor.calibration_file"]


async def test_the_control_process_names_the_key_of_a_missing_device(
    tmp_path: Path, tty: str
) -> None:
    """What the daemon's start-up failed with on a charger without ``/dev/i2c-1``."""
    path = tmp_path / "gateway.toml"
    path.write_text(f'[power_module]\nport = "{tty}"\n[power_sensor]\ni2c_bus = 250\n')
    cfg: ControlProcessConfig = load_gateway_config(path).control_process()
    with pytest.raises(HardwareError) as caught:
        async with open_hardware(cfg):
            pass
    assert str(caught.value) == (
        "power_sensor.i2c_bus: [Errno 2] No such file or directory: '/dev/i2c-250'"
    )


def test_the_daemon_refuses_to_start_without_its_certificates(
    tmp_path: Path, tty: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not only ``--check-config``: a start with a key missing is a configuration error
    (exit 2, no systemd restart loop), named by its key, before anything starts."""
    path = _config(tmp_path, tty)
    (tmp_path / "cs.key").unlink()
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"station.client_key: {tmp_path}/cs.key does not exist" in err
