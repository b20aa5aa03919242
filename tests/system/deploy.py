"""Installing the deployables into a root filesystem the way a machine in the field gets them,
and the bench pieces around them (configuration, certificates, the simulator's devices).

The gateway follows docs/installing-gateway.md §1 step by step; the core follows the steps in
the header of systemd/vpp-core.service. Both install from a wheelhouse (no index: a charger
need not reach one), building this repository's own distributions from source inside the
target with the target's own ``python3``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.integration.gateway.daemon.daemon_harness import to_toml

__all__ = [
    "REPO",
    "bench_gateway_config",
    "core_config",
    "group_id",
    "install_core",
    "install_gateway",
    "write_config",
]

REPO = Path(__file__).resolve().parents[2]
_CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


def _chroot(root: Path, *argv: str) -> None:
    subprocess.run(["chroot", str(root), *argv], env=_CLEAN_ENV, check=True)


def _venv_install(root: Path, *, venv: str, wheelhouse: Path, sources: Sequence[str]) -> None:
    """``python3 -m venv`` and ``pip install --no-index`` of ``sources`` (directories under
    ``packages/``, with extras) inside ``root``, from ``wheelhouse``."""
    stage = root / "var/cache/v2g-install"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(wheelhouse, stage / "wheels", ignore=shutil.ignore_patterns(".*"))
    for source in sources:
        name = source.split("[")[0]
        shutil.copytree(REPO / "packages" / name, stage / "src" / name)
    if not (root / venv.lstrip("/") / "bin/python").exists():
        _chroot(root, "/usr/bin/python3", "-m", "venv", venv)
    pip = [f"{venv}/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    pip += ["--no-index", "--find-links", "/var/cache/v2g-install/wheels"]
    _chroot(root, *pip, *(f"/var/cache/v2g-install/src/{s}" for s in sources))
    shutil.rmtree(stage)


def _sysusers(root: Path, conf: Path) -> None:
    target = root / "usr/lib/sysusers.d" / conf.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(conf, target)
    subprocess.run(["systemd-sysusers", f"--root={root}", str(target)], check=True)


def group_id(root: Path, name: str) -> int:
    """The numeric id of group ``name`` in ``root``'s /etc/group."""
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise KeyError(f"no group {name} in {root}/etc/group")


def _unit(root: Path, name: str) -> None:
    target = root / "etc/systemd/system" / name
    shutil.copyfile(REPO / "systemd" / name, target)
    target.chmod(0o644)


def install_gateway(root: Path, *, wheelhouse: Path) -> None:
    """docs/installing-gateway.md §1 into ``root``: ``scripts/install-gateway`` in its chroot
    mode, offline from ``wheelhouse``, with journald fields and the bench's simulated
    devices (§5)."""
    subprocess.run(
        [
            str(REPO / "scripts/install-gateway"),
            "--root",
            str(root),
            "--wheelhouse",
            str(wheelhouse),
            "--with-systemd-python",
            "--with-simulated-devices",
        ],
        env=_CLEAN_ENV,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def install_core(root: Path, *, wheelhouse: Path, pki_root: Path) -> None:
    """The core as systemd/vpp-core.service's header says: venv in /opt/v2g-vpp, the
    ``vpp-core`` user, /etc/vpp-core with the CSMS certificates, the unit."""
    _venv_install(
        root, venv="/opt/v2g-vpp/.venv", wheelhouse=wheelhouse, sources=["common", "core"]
    )
    _sysusers(root, REPO / "systemd/vpp-core.sysusers")
    gid = group_id(root, "vpp-core")
    etc = root / "etc/vpp-core"
    for path, source in {
        etc / "pki/ca.pem": pki_root / "ca.pem",
        etc / "pki/servers/csms.pem": pki_root / "servers/csms.pem",
        etc / "pki/servers/csms.key": pki_root / "servers/csms.key",
    }.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
    for path in (etc, *etc.rglob("*")):
        _own(path, gid, mode=0o750 if path.is_dir() else 0o640)
    _unit(root, "vpp-core.service")


def _own(path: Path, gid: int, *, mode: int) -> None:
    """root:``gid`` and ``mode``: readable by the service's group, writable by root only."""
    os.chown(path, 0, gid)
    path.chmod(mode)


def write_config(root: Path, path: str, text: str, *, group: str) -> None:
    """A configuration file as the installer leaves it: 0640 root:``group``."""
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    _own(target, group_id(root, group), mode=0o640)


def _shipped(name: str, drop: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    with (REPO / "etc" / name).open("rb") as fh:
        config = tomllib.load(fh)
    return {k: v for k, v in config.items() if k not in drop}


def _merged(
    base: dict[str, dict[str, Any]], overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    return base


def bench_gateway_config(**overrides: Mapping[str, Any]) -> str:
    """etc/gateway.toml with what a v2g-sim bench changes (docs/installing-gateway.md §5),
    real-time on (§1 "set both on site"), the local test lease and the test hooks (§6)."""
    bench: dict[str, dict[str, Any]] = {
        "daemon": {"test_hooks": True, "test_stall_s": 8.0},
        "control": {"realtime_priority": 50, "realtime_mlockall": True},
        "power_module": {"port": "/dev/ttyRS485", "parity": "N"},
        "power_sensor": {"kind": "simulated"},
        "contactor": {"kind": "simulated"},
        "simulator": {"socket": "/run/v2g-sim/sim.sock"},
        "local_lease": {
            "enabled": True,
            "power_w": -3000.0,
            "valid_for_s": 4.0,
            "renew_every_s": 1.0,
            "ev_max_discharge_w": 10000.0,
        },
    }
    config = _merged(
        _merged(_shipped("gateway.toml", drop=("station", "uplink")), bench), overrides
    )
    return to_toml(config)


def core_config(*, csms_port: int, metrics_port: int, **overrides: Mapping[str, Any]) -> str:
    """etc/core.toml on free ports (the container shares the host's network)."""
    ports: dict[str, dict[str, Any]] = {
        "csms": {"host": "127.0.0.1", "port": csms_port},
        "metrics": {"port": metrics_port},
    }
    config = _merged(_shipped("core.toml", drop=("api", "ingest")), ports)
    return to_toml(_merged(config, overrides))
