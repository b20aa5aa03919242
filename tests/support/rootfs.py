"""Cached Debian root filesystems and wheelhouses for the system tests (``tests/system``).

``cached_rootfs()`` runs ``debootstrap`` once per recipe (suite, mirror, packages, build steps)
into ``~/.cache/v2g-vpp/rootfs/<key>/``; ``cached_wheelhouse()`` fills
``~/.cache/v2g-vpp/wheelhouse/<key>/`` with the third-party wheels the deployables need, keyed
by their ``pyproject.toml`` files and this Python's version. Both are built under a lock (two
test runs on one machine wait for each other) into a temporary directory that is renamed
into place when complete, so an interrupted build leaves nothing half-made behind.

Tests never write to the cache: every container boots an :func:`overlay` whose upper layer
lives in the test's temporary directory. ``V2G_CACHE_DIR`` moves the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "CACHE_DIR",
    "DEFAULT_RECIPE",
    "RootfsRecipe",
    "cached_rootfs",
    "cached_wheelhouse",
    "overlay",
]

CACHE_DIR = Path(os.environ.get("V2G_CACHE_DIR") or Path.home() / ".cache" / "v2g-vpp")
_COMPLETE = ".complete.json"
_UNUSED_FOR_S = 30 * 86400  # entries not used for this long are removed (other keys only)


@dataclass(frozen=True)
class RootfsRecipe:
    """What goes into a root filesystem; its hash names the cache entry."""

    suite: str = "bookworm"
    mirror: str = os.environ.get("V2G_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    #: procps: /bin/kill, the unit's ExecReload= (Debian priority "important", not in minbase)
    packages: tuple[str, ...] = ("systemd", "dbus", "python3", "python3-venv", "procps")
    #: Timers that only cost a booted test container time and noise.
    masked_units: tuple[str, ...] = (
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "dpkg-db-backup.timer",
        "e2scrub_all.timer",
        "console-getty.service",
    )
    #: Bump when the build steps below change.
    steps_version: int = 1

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


DEFAULT_RECIPE = RootfsRecipe()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _cached(
    kind: str, key: str, build: Callable[[Path], None], description: dict[str, object]
) -> Path:
    """``CACHE_DIR/kind/key``, made by ``build(tmp_dir)`` the first time."""
    final = CACHE_DIR / kind / key
    with _locked(CACHE_DIR / kind / f"{key}.lock"):
        _prune(CACHE_DIR / kind, keep=key)
        if (final / _COMPLETE).exists():
            (final / _COMPLETE).touch()  # last used
            return final
        tmp = CACHE_DIR / kind / f"{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        build(tmp)
        (tmp / _COMPLETE).write_text(json.dumps(description, indent=1, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    return final


def _prune(kind_dir: Path, *, keep: str) -> None:
    """Remove complete entries of other keys whose last use is older than 30 days."""
    cutoff = time.time() - _UNUSED_FOR_S
    for stamp in kind_dir.glob(f"*/{_COMPLETE}"):
        entry = stamp.parent
        if entry.name != keep and stamp.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def cached_rootfs(recipe: RootfsRecipe = DEFAULT_RECIPE) -> Path:
    """A booted-ready Debian tree (minbase + ``recipe.packages``); read-only by convention."""
    return _cached("rootfs", recipe.key(), lambda tmp: _debootstrap(recipe, tmp), asdict(recipe))


def _debootstrap(recipe: RootfsRecipe, target: Path) -> None:
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(recipe.packages)}",
            recipe.suite,
            str(target),
            recipe.mirror,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for unit in recipe.masked_units:
        link = target / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # Each boot gets a fresh machine id (systemd-nspawn passes one; an empty file means "new").
    (target / "etc/machine-id").write_text("")
    shutil.rmtree(target / "var/cache/apt/archives", ignore_errors=True)
    (target / "var/cache/apt/archives/partial").mkdir(parents=True)


def cached_wheelhouse(requirements: Sequence[str], *, key_files: Sequence[Path]) -> Path:
    """Wheels of everything ``requirements`` pull in, except this repository's own
    distributions (the installers build those from source). ``key_files`` (the
    ``pyproject.toml`` files behind ``requirements``) and this Python's version name the entry:
    the wheels are for the target's ``python3`` of the same minor version."""
    digest = hashlib.sha256()
    digest.update(f"{sys.implementation.cache_tag} {sorted(requirements)}".encode())
    for path in key_files:
        digest.update(path.read_bytes())
    key = digest.hexdigest()[:16]
    return _cached(
        "wheelhouse",
        key,
        lambda tmp: _build_wheels(requirements, tmp),
        {"requirements": list(requirements), "python": sys.implementation.cache_tag},
    )


_OWN_DISTRIBUTIONS = ("v2g_common-", "v2g_gateway-", "vpp_core-", "v2g_sim-")


def _build_wheels(requirements: Sequence[str], target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(target), *requirements],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for wheel in target.glob("*.whl"):
        if wheel.name.startswith(_OWN_DISTRIBUTIONS):
            wheel.unlink()


@contextlib.contextmanager
def overlay(lower: Path, work_dir: Path) -> Iterator[Path]:
    """``lower`` seen through a writable overlay whose changes land in ``work_dir``."""
    upper, work, merged = (work_dir / name for name in ("upper", "work", "merged"))
    for path in (upper, work, merged):
        path.mkdir(parents=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", "--lazy", str(merged)], check=False)
