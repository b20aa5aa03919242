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

__all__ = [
    "CERTIFICATE_AUTHORITY",
    "CORE",
    "EDGE_DEVICES",
    "PROBE_DIR",
    "PROTOCOLS",
    "SIMULATOR",
    "SIMULATOR_ADAPTERS",
    "LoadedModules",
    "forbidden",
    "loaded_under",
    "probe_env",
    "read_records",
]

PROBE_DIR = Path(__file__).resolve().parent / "sysmodules"

#: What only the core runs.
CORE = ["vpp_core", "numpy", "sqlalchemy", "aiosqlite", "asyncpg", "fastapi", "starlette",
        "uvicorn", "matplotlib", "prometheus_client"]  # fmt: skip
#: What only the simulator and the demo run.
SIMULATOR = ["v2g_sim", "rich", "httpx"]
#: Issuing certificates: provision-pki and the demo, never a charger.
CERTIFICATE_AUTHORITY = ["cryptography", "v2g_common.pki.authority", "v2g_common.pki.layout"]
#: The control process's devices: the supervisor never touches them.
EDGE_DEVICES = ["pymodbus", "serial", "smbus2", "gpiod", "v2g_gateway.hardware",
                "v2g_gateway.hw.power_module", "v2g_gateway.hw.power_sensor"]  # fmt: skip
#: OCPP, MQTT and their adapters: the supervisor's services, never the control process.
PROTOCOLS = ["ocpp", "websockets", "paho", "jsonschema", "fastjsonschema", "v2g_common.ocpp21",
             "v2g_common.telemetry.link", "v2g_gateway.station", "v2g_gateway.uplink"]  # fmt: skip
#: ... except their configuration sections, which every gateway process validates.
SECTIONS = {"v2g_gateway.station", "v2g_gateway.station.config", "v2g_gateway.uplink",
            "v2g_gateway.uplink.config"}  # fmt: skip


def forbidden(record: LoadedModules, names: list[str]) -> list[str]:
    """What ``record`` loaded of ``names``, configuration sections aside."""
    return [m for m in record.loaded(names) if m not in SECTIONS]


#: What a gateway process may load of the simulator when a device is ``simulated``.
SIMULATOR_ADAPTERS = {"v2g_sim", "v2g_sim.control_client", "v2g_sim.gateway_adapters"}


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
