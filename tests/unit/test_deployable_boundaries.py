"""Each deployable loads only what it runs: every entry point is run in a subprocess far enough
to have imported everything it will run, and what it loaded (``sys.modules`` at its exit,
recorded by tests/support/sysmodules) is checked against what it must not load. Indirect
imports count: ``import v2g_sim.control`` anywhere under the control law or the planner
fails here. (The direct-import rules are tests/unit/test_import_boundaries.py; the daemon
and its control process running against the simulator are checked in
tests/integration/test_running_boundaries.py.)
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.loaded_modules import (
    CERTIFICATE_AUTHORITY,
    CORE,
    EDGE_DEVICES,
    PROTOCOLS,
    SIMULATOR,
    LoadedModules,
    forbidden,
    probe_env,
    read_records,
)
from v2g_gateway.contactor import ContactorSection
from v2g_gateway.devices import ControlProcessConfig, PowerSensorConfig
from v2g_gateway.hw.config import PowerModuleSection

BIN = Path(sys.executable).parent


def only(records: list[LoadedModules], fragment: str) -> LoadedModules:
    (record,) = [r for r in records if fragment in " ".join(r.argv)]
    return record


def run_script(tmp_path: Path, *argv: str, expect: int = 0) -> list[LoadedModules]:
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        env=probe_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == expect, done.stderr[-2000:]
    return read_records(tmp_path)


def field_control_config(tmp_path: Path) -> ControlProcessConfig:
    """A charger's devices (INA228 on i2c, contactor on gpiod): none exists here, so the
    control process imports everything, fails to open the i2c bus and exits 3."""
    return ControlProcessConfig(
        power_module=PowerModuleSection(port=str(tmp_path / "ttyRS485")),
        power_sensor=PowerSensorConfig(kind="ina228", i2c_bus=250, calibration_file=tmp_path / "c"),
        contactor=ContactorSection(kind="gpiod", chip=tmp_path / "gpiochip0"),
    )


def run_control_process(tmp_path: Path, config: ControlProcessConfig) -> LoadedModules:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        done = subprocess.run(
            [sys.executable, "-m", "v2g_gateway.control_host", "--fd", str(theirs.fileno())],
            input=config.model_dump_json().encode(),
            pass_fds=(theirs.fileno(),),
            env=probe_env(tmp_path),
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 3, done.stderr.decode()[-2000:]  # HARDWARE_EXIT_STATUS
    assert b"/dev/i2c-250" in done.stderr
    return only(read_records(tmp_path), "control_host")


def test_the_control_process_loads_no_protocol_core_simulator_or_ca(tmp_path: Path) -> None:
    record = run_control_process(tmp_path, field_control_config(tmp_path))
    # far enough: the loop, the law and the device wiring are loaded
    assert record.loaded(["v2g_gateway.control.law", "v2g_gateway.control.loop"])
    assert record.loaded(["v2g_gateway.hardware", "pymodbus", "smbus2"])
    assert forbidden(record, PROTOCOLS + CORE + SIMULATOR + CERTIFICATE_AUTHORITY) == []


GATEWAY_TOML = """
[power_module]
port = "{tmp}/ttyRS485"
[power_sensor]
i2c_bus = 250
calibration_file = "{tmp}/cal.json"
[contactor]
kind = "gpiod"
chip = "{tmp}/gpiochip0"
"""
SERVICES_TOML = """
[station]
csms_url = "ws://127.0.0.1:9/ocpp"
identity = "CS-PROBE"
security_profile = 1
password = "probe-password-00001"
state_dir = "{tmp}"
[uplink]
site = "site-probe"
region = "region-1"
broker_host = "127.0.0.1"
ca_file = "{tmp}/ca.pem"
cert_file = "{tmp}/site.pem"
key_file = "{tmp}/site.key"
outbox_path = "{tmp}/outbox.sqlite3"
"""
BENCH_TOML = """
[local_lease]
enabled = true
"""


def run_daemon(tmp_path: Path, *sections: str) -> list[LoadedModules]:
    """The daemon on a charger's configuration; its control process finds no hardware, so
    both exit (1 and 3) after having built and started everything."""
    config = tmp_path / "gateway.toml"
    config.write_text("".join(s.format(tmp=tmp_path) for s in (GATEWAY_TOML, *sections)))
    for name in ("ca.pem", "site.pem", "site.key"):  # the daemon checks they exist
        (tmp_path / name).write_text("not a certificate: the link fails later, in the open")
    records = run_script(tmp_path, "v2g-gateway", "--config", str(config), expect=1)
    assert len(records) == 2, [r.argv for r in records]
    return records


def test_the_daemon_loads_its_services_but_no_device_core_simulator_or_ca(
    tmp_path: Path,
) -> None:
    records = run_daemon(tmp_path, SERVICES_TOML)
    supervisor = only(records, "v2g-gateway")
    assert supervisor.loaded(["v2g_gateway.station.service", "v2g_gateway.uplink.service"])
    assert supervisor.loaded(EDGE_DEVICES + CORE + SIMULATOR + CERTIFICATE_AUTHORITY) == []
    control = only(records, "control_host")
    assert forbidden(control, PROTOCOLS + CORE + SIMULATOR + CERTIFICATE_AUTHORITY) == []


def test_a_bench_daemon_without_station_or_uplink_loads_no_protocol(tmp_path: Path) -> None:
    supervisor = only(run_daemon(tmp_path, BENCH_TOML), "v2g-gateway")
    assert supervisor.loaded(["v2g_gateway.local_lease", "v2g_gateway.supervisor"])
    assert forbidden(supervisor, PROTOCOLS + EDGE_DEVICES + CORE + SIMULATOR) == []


def test_check_config_loads_the_configured_device_code_only(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(GATEWAY_TOML.format(tmp=tmp_path))
    # exit 2: the devices it names are absent here (it checks they exist, opening nothing)
    (record,) = run_script(
        tmp_path, "v2g-gateway", "--config", str(config), "--check-config", expect=2
    )
    assert record.loaded(["v2g_gateway.hardware"])  # the adapters were imported, not opened
    assert record.loaded(["gpiod", *CORE, *SIMULATOR, *CERTIFICATE_AUTHORITY]) == []


def test_the_core_loads_no_gateway_simulator_or_ca(tmp_path: Path) -> None:
    (record,) = run_script(tmp_path, "vpp-core", "--help")
    assert record.loaded(["vpp_core.dispatch.planner", "vpp_core.csms", "vpp_core.app"])
    assert record.loaded(["v2g_gateway", *SIMULATOR, *CERTIFICATE_AUTHORITY, "gpiod"]) == []
    assert record.loaded(["nats"]) == []  # the bus client: cluster roles only (docs/cluster.md)


def test_the_simulator_loads_no_core(tmp_path: Path) -> None:
    (record,) = run_script(tmp_path, "v2g-sim", "--help")
    assert record.loaded(["v2g_sim.runtime", "v2g_sim.control"])
    assert record.loaded(CORE + CERTIFICATE_AUTHORITY) == []


@pytest.mark.parametrize(
    ("script", "loads", "must_not_load"),
    [
        (
            "provision-pki",
            ["v2g_common.pki.cli", "cryptography"],
            ["v2g_gateway", "v2g_sim", *CORE, *PROTOCOLS],
        ),
        (
            "calibrate-sensors",
            ["v2g_gateway.hw.power_sensor.calibrate_cli", "v2g_gateway.adapters"],
            [*PROTOCOLS, *CORE, *SIMULATOR, *CERTIFICATE_AUTHORITY],
        ),
    ],
)
def test_technician_scripts(
    tmp_path: Path, script: str, loads: list[str], must_not_load: list[str]
) -> None:
    (record,) = run_script(tmp_path, script, "--help")
    assert all(record.loaded([name]) for name in loads), loads
    assert record.loaded(must_not_load) == []
