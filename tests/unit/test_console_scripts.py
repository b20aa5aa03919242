"""Every deployable's console script is installed and answers --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("script", ["v2g-gateway", "vpp-core", "v2g-sim", "vpp-demo"])
def test_console_script_help(script: str) -> None:
    done = subprocess.run(
        [str(BIN / script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout.lower()


@pytest.mark.parametrize("script", ["provision-pki", "calibrate-sensors"])
def test_technician_script_help(script: str) -> None:
    path = Path(__file__).resolve().parents[2] / "scripts" / script
    done = subprocess.run(
        [str(path), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout.lower()
