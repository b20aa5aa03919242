"""Records what a Python process loaded: with this directory on ``PYTHONPATH`` and
``V2G_SYSMODULES_DIR`` set, every Python process started with that environment (a daemon and
the children it spawns) writes ``<pid>.json`` there when it exits normally: its argv, the
names in ``sys.modules`` and its resident memory (``VmRSS`` at exit, peak ``VmHWM``, kB).

Used by the boundary test (tests/unit/test_deployable_boundaries.py and
tests/integration/test_running_boundaries.py) and benchmarks/footprint.py. Nothing here is
imported by the product; it only observes.
"""

from __future__ import annotations

import atexit
import os
import sys


def _memory_kb() -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


def _dump() -> None:
    target = os.environ.get("V2G_SYSMODULES_DIR")
    if not target:
        return
    modules = sorted(sys.modules)  # before json is imported here
    import json

    record = {
        "pid": os.getpid(),
        "argv": sys.argv,
        "modules": modules,
        **_memory_kb(),
    }
    path = os.path.join(target, f"{os.getpid()}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        json.dump(record, out)
    os.replace(path + ".tmp", path)


atexit.register(_dump)
