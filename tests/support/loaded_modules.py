"""Run an entry point in a subprocess and see what it loaded (``sys.modules`` at its exit,
and its resident memory), through ``tests/support/sysmodules/sitecustomize.py``. Every Python
process started with :func:`probe_env` (and every child it spawns with that environment)
leaves one record; a process killed with SIGKILL leaves none.

Used by the boundary tests and benchmarks/footprint.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROBE_DIR", "LoadedModules", "loaded_under", "probe_env", "read_records"]

PROBE_DIR = Path(__file__).resolve().parent / "sysmodules"


def probe_env(
    dump_dir: Path, base: Mapping[str, str] | None = None, **extra: str
) -> dict[str, str]:
    """An environment whose Python processes record themselves into ``dump_dir``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE_DIR), env.get("PYTHONPATH")]))
    return {**env, "V2G_SYSMODULES_DIR": str(dump_dir), **extra}


@dataclass(frozen=True)
class LoadedModules:
    """One process's record: its argv, every module it imported, VmRSS/VmHWM in kB."""

    pid: int
    argv: tuple[str, ...]
    modules: frozenset[str]
    rss_kb: int
    peak_rss_kb: int

    def loaded(self, names: Iterable[str]) -> list[str]:
        """The loaded modules that are one of ``names`` or inside one of them."""
        return loaded_under(self.modules, names)

    @property
    def rss_mb(self) -> float:
        return round(self.rss_kb / 1024, 1)


def loaded_under(modules: Iterable[str], names: Iterable[str]) -> list[str]:
    wanted = tuple(names)
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in wanted))


def read_records(dump_dir: Path) -> list[LoadedModules]:
    records = []
    for path in sorted(dump_dir.glob("*.json")):
        data = json.loads(path.read_text())
        records.append(
            LoadedModules(
                pid=data["pid"],
                argv=tuple(data["argv"]),
                modules=frozenset(data["modules"]),
                rss_kb=int(data.get("VmRSS", 0)),
                peak_rss_kb=int(data.get("VmHWM", 0)),
            )
        )
    return records
