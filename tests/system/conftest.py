"""The system tests: the deployables installed into a Debian root filesystem as a machine in
the field gets them, booted under a real systemd (``systemd-nspawn -b``), and asserted on
what systemd and journald report from inside.

Needs root, ``debootstrap``, ``systemd-nspawn`` (Debian's ``systemd-container``), overlayfs
and the Debian mirror (the first run only: the root filesystem and the wheels are cached in
``~/.cache/v2g-vpp``, see tests/support/rootfs.py). ``scripts/setup`` installs the tools
when run as root. Without root the tests are skipped; as root with a tool missing they fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.rootfs import cached_rootfs, cached_wheelhouse
from tests.system.deploy import REPO

_TOOLS = ("debootstrap", "systemd-nspawn", "nsenter", "systemd-sysusers", "chroot", "mount")


@pytest.fixture(scope="session")
def system_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("system tests boot systemd-nspawn containers: run as root")
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {missing}: run scripts/setup as root (installs them)")
    if "overlay" not in Path("/proc/filesystems").read_text():
        pytest.fail("the kernel has no overlayfs: the tests boot overlays of a cached root")


@pytest.fixture(scope="session")
def rootfs(system_host: None) -> Path:
    """The cached Debian bookworm tree (minbase, systemd, dbus, python3, python3-venv)."""
    return cached_rootfs()


@pytest.fixture(scope="session")
def wheelhouse(system_host: None) -> Path:
    """Third-party wheels of the gateway (with its [systemd] extra) and of the core."""
    packages = REPO / "packages"
    return cached_wheelhouse(
        [
            str(packages / "common"),
            f"{packages / 'gateway'}[systemd]",
            str(packages / "core"),
            "setuptools>=77",
            "wheel",
        ],
        key_files=[packages / name / "pyproject.toml" for name in ("common", "gateway", "core")],
    )
