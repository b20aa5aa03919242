"""scripts/install-gateway --with-iso15118: without a Java runtime (and no way to install one)
it stops before installing anything and prints the line to run. The install itself (both
venvs) is docs/installing-gateway.md's command; it takes about a minute."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "install-gateway"


def _path_without_java(tmp_path: Path) -> str:
    """A PATH with only what the script needs before its first install step: no java, no
    apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sh", "id", "dirname", "env"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_without_a_java_runtime_nothing_is_installed_and_the_fix_is_printed(
    tmp_path: Path,
) -> None:
    target = tmp_path / "root"
    target.mkdir()
    done = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(target), "--no-accounts", "--with-iso15118"],
        env={**os.environ, "PATH": _path_without_java(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "needs a Java runtime" in done.stderr
    assert "apt-get install default-jre-headless" in done.stderr
    assert list(target.iterdir()) == []


def test_help_names_the_option() -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    )
    assert "--with-iso15118" in done.stdout
    assert "venv-iso15118" in done.stdout
