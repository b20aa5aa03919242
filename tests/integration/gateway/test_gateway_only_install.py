"""A charger's install: scripts/install-gateway into a target root (no core, no simulator),
then the shipped configuration checked, a simulated kind refused with a clear error, and the
daemon integration tests (tests/integration/gateway/daemon/) run with the daemon on that
venv's Python against the simulator from the development venv.

The simulated devices a bench needs come from v2g-sim's adapters, which the gateway finds
through entry points: the bench root adds them with ``--with-simulated-devices`` (v2g-sim's
code with ``--no-deps``: none of the simulator's or the core's dependencies). A daemon whose
adapters reached for the core would fail there with ImportError.

The roots are cached under ``~/.cache/v2g-vpp/gateway-install/`` keyed by what decides the
installed dependencies (the pyprojects, the install script, this repository's path, the
Python version); every run re-runs the (idempotent) script, which rebuilds the repository's
packages from the current sources and keeps the dependencies; the installed gateway.toml is
removed first, since the script keeps an existing one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "install-gateway"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "v2g-vpp"
VENV = Path("opt/v2g-gateway/.venv")
ISO_VENV = Path("opt/v2g-gateway/venv-iso15118")
DAEMON_TESTS = "tests/integration/gateway/daemon"
NOT_ON_A_CHARGER = {"vpp-core", "v2g-sim", "numpy", "fastapi", "sqlalchemy", "matplotlib",
                    "uvicorn", "cryptography", "rich", "httpx", "pysunspec2", "psutil"}  # fmt: skip


def _cache_key() -> str:
    digest = hashlib.sha256()
    for path in (SCRIPT, *sorted((REPO / "packages").glob("*/pyproject.toml"))):
        digest.update(path.read_bytes())
    digest.update(f"{REPO}|{sys.version}".encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def install_roots() -> Iterator[dict[str, Path]]:
    """``gateway``: install-gateway alone; ``bench``: plus --with-simulated-devices and
    --with-iso15118 (the SECC's venv)."""
    base = CACHE / "gateway-install" / _cache_key()
    base.mkdir(parents=True, exist_ok=True)
    roots = {"gateway": base / "gateway", "bench": base / "bench"}
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer per cache entry at a time
        for name, root in roots.items():
            root.mkdir(exist_ok=True)
            # The script keeps an existing gateway.toml (an operator's edits): the cache keeps
            # dependencies, not the config, so the sample is installed fresh on every run.
            (root / "etc/v2g-gateway/gateway.toml").unlink(missing_ok=True)
            extra = ["--with-simulated-devices", "--with-iso15118"] if name == "bench" else []
            done = subprocess.run(
                [str(SCRIPT), "--root", str(root), "--python", sys.executable, *extra],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        yield roots


def installed(root: Path, venv: Path = VENV) -> dict[str, str]:
    done = subprocess.run(
        [str(root / venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {p["name"].lower(): p["version"] for p in json.loads(done.stdout)}


def gateway(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / VENV / "bin" / "v2g-gateway"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_charger_gets_the_gateway_and_nothing_of_core_or_simulator(
    install_roots: dict[str, Path],
) -> None:
    packages = installed(install_roots["gateway"])
    assert {"v2g-gateway", "v2g-common", "pymodbus", "gpiod", "ocpp", "paho-mqtt"} <= set(packages)
    assert set(packages) & NOT_ON_A_CHARGER == set()
    bench = installed(install_roots["bench"])
    # the adapters' code and the ISO 15118 link's entry point, no dependency
    assert set(bench) - set(packages) == {"v2g-sim", "v2g-ev15118"}


def test_with_iso15118_the_secc_gets_its_own_venv(install_roots: dict[str, Path]) -> None:
    assert not (install_roots["gateway"] / ISO_VENV).exists()
    secc = installed(install_roots["bench"], ISO_VENV)
    assert secc["iso15118"] == "0.31.2"
    assert secc["pydantic"].startswith("1.")
    assert "v2g-gateway" not in secc
    assert installed(install_roots["bench"])["pydantic"].startswith("2.")
    done = subprocess.run(
        [
            str(install_roots["bench"] / ISO_VENV / "bin" / "python"),
            "-c",
            "import v2g_ev15118.secc",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_installed_tree(install_roots: dict[str, Path]) -> None:
    root = install_roots["gateway"]
    unit = (root / "etc/systemd/system/v2g-gateway.service").read_text()
    assert "ExecStart=/opt/v2g-gateway/.venv/bin/v2g-gateway --config" in unit
    assert (root / "usr/lib/sysusers.d/v2g-gateway.conf").is_file()
    passwd = (root / "etc/passwd").read_text()
    assert passwd.startswith("v2g-gateway:") or "\nv2g-gateway:" in passwd
    groups = {line.split(":")[0]: line.split(":")[3] for line in (root / "etc/group").open()}
    for group in ("dialout", "i2c", "gpio"):
        assert "v2g-gateway" in groups[group].strip().split(","), group
    config = root / "etc/v2g-gateway/gateway.toml"
    assert config.read_bytes() == (REPO / "etc/gateway.toml").read_bytes()
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    assert (root / "var/lib/v2g-gateway").is_dir()
    assert (root / "opt/v2g-gateway/docs/installing-gateway.md").is_file()


def test_check_config_on_the_shipped_config_names_what_this_host_lacks(
    install_roots: dict[str, Path],
) -> None:
    """The sample is valid, but this host is no charger: no serial port, i2c bus, GPIO chip
    or certificates, each named by its key (it said ``ok`` once)."""
    root = install_roots["gateway"]
    config = root / "etc/v2g-gateway/gateway.toml"
    done = gateway(root, "--config", str(config), "--check-config")
    assert done.returncode == 2, done.stderr
    keys = {line.strip().split(":")[0] for line in done.stderr.splitlines()[1:]}
    assert {"power_module.port", "power_sensor.i2c_bus", "contactor.chip"} <= keys
    assert {"station.client_cert", "station.client_key", "uplink.key_file"} <= keys
    assert "Traceback" not in done.stderr


def test_a_simulated_device_without_the_simulator_is_a_config_error(
    install_roots: dict[str, Path], tmp_path: Path
) -> None:
    master, slave = os.openpty()  # a serial port that exists, for the bench's check
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[power_module]\nport = "{os.ttyname(slave)}"\n[power_sensor]\nkind = "simulated"\n'
        f'[contactor]\nkind = "simulated"\n[simulator]\nsocket = "{tmp_path}/sim.sock"\n'
    )
    done = gateway(install_roots["gateway"], "--config", str(config), "--check-config")
    assert done.returncode == 2, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.strip().startswith("contactor.kind:")]
    assert "'simulated' is not available here" in line
    assert "v2g-sim" in line
    done = gateway(install_roots["bench"], "--config", str(config), "--check-config")
    os.close(slave)
    os.close(master)
    assert done.returncode == 0, done.stderr  # the bench has the adapters


def test_provision_pki_says_it_belongs_elsewhere(install_roots: dict[str, Path]) -> None:
    tool = install_roots["gateway"] / VENV / "bin" / "provision-pki"
    done = subprocess.run([str(tool), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "v2g-common[pki]" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_daemon_tests_pass_on_the_gateway_install(install_roots: dict[str, Path]) -> None:
    python = install_roots["bench"] / VENV / "bin" / "python"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", DAEMON_TESTS],
        cwd=REPO,
        env={**os.environ, "V2G_GATEWAY_PYTHON": str(python)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert " failed" not in done.stdout
