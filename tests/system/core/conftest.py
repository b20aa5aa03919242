"""One booted core container per test module: vpp-core installed as systemd/vpp-core.service's
header says, SQLite in its StateDirectory, on free ports of the shared host network."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TestPki
from tests.support.mosquitto import free_port
from tests.support.nspawn import boot
from tests.support.rootfs import overlay
from tests.system.deploy import core_config, install_core, write_config
from tests.system.unit import ServiceUnit, around_each_test

UNIT = "vpp-core.service"
CONFIG = "/etc/vpp-core/core.toml"


@dataclass
class CoreBench(ServiceUnit):
    csms_port: int
    metrics_port: int

    def configure(self, **sections: Mapping[str, Any]) -> None:
        text = core_config(csms_port=self.csms_port, metrics_port=self.metrics_port, **sections)
        write_config(self.root, CONFIG, text, group="vpp-core")

    def reset(self) -> None:
        self.reset_unit()
        self.configure()


@pytest.fixture(scope="module")
def core_bench(
    rootfs: Path, wheelhouse: Path, pki: TestPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CoreBench]:
    with overlay(rootfs, tmp_path_factory.mktemp("core-root")) as root:
        install_core(root, wheelhouse=wheelhouse, pki_root=pki.layout.root)
        console = tmp_path_factory.mktemp("console") / "core.log"
        with boot(root, name=f"v2g-core-{os.getpid()}", console=console) as box:
            yield CoreBench(box, root, UNIT, free_port(), free_port())


@pytest.fixture
def core(core_bench: CoreBench) -> Iterator[CoreBench]:
    """The module's bench, reset before and after each test."""
    yield from around_each_test(core_bench)
