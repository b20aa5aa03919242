"""One-way doors, by direct imports: the control loop and the dispatch engine import no
protocol, transport, database or web code, nor the adapters built on them (STYLE.md, rule 1);
a distribution imports nothing of the distributions that depend on it; ``ocpp`` is imported
only inside ``v2g_common.ocpp21``. What each entry point actually loads, indirect imports
included, is tests/unit/test_deployable_boundaries.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "packages"

FORBIDDEN_THIRD_PARTY = {
    "ocpp",
    "websockets",
    "paho",
    "pymodbus",
    "serial",
    "smbus2",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "fastapi",
    "uvicorn",
    "starlette",
    "httpx",
    "sunspec2",
}
CORE_ADAPTERS = {
    "vpp_core.csms",
    "vpp_core.api",
    "vpp_core.fleet",
    "vpp_core.ingest",
    "vpp_core.app",
    "v2g_common.ocpp21",
}
DOMAINS = {
    "gateway/v2g_gateway/control": {
        "v2g_gateway.station",
        "v2g_gateway.uplink",
        "v2g_gateway.hw",
        "v2g_gateway.daemon",
        "v2g_gateway.supervisor",
        "v2g_common.ocpp21",
    },
    # the core's domain rooms: the dispatch engine and the frequency services
    "core/vpp_core/dispatch": CORE_ADAPTERS,
    "core/vpp_core/services": CORE_ADAPTERS,
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(domain: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / domain).rglob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            inner = any(name == f or name.startswith(f + ".") for f in DOMAINS[domain])
            if top in FORBIDDEN_THIRD_PARTY or inner:
                bad.append(f"{path.relative_to(ROOT.parent)} imports {name}")
    return bad


#: distribution's package directory -> top-level packages it must not import (they depend
#: on it, or are another deployable).
DISTRIBUTIONS = {
    "common/v2g_common": {"v2g_gateway", "vpp_core", "v2g_sim", "v2g_ev15118"},
    "gateway/v2g_gateway": {"vpp_core", "v2g_sim", "v2g_ev15118"},
    "core/vpp_core": {"v2g_gateway", "v2g_sim", "v2g_ev15118"},
    # the simulator starts the EVCC by module name, in its own virtualenv
    "sim/v2g_sim": {"v2g_ev15118"},
    "ev15118/v2g_ev15118": {"vpp_core", "v2g_sim"},
}
#: The sources (not build/ copies a local pip install may leave next to them).
PACKAGES = [ROOT / d for d in ("common/v2g_common", "gateway/v2g_gateway", "core/vpp_core",
                               "sim/v2g_sim", "ev15118/v2g_ev15118")]  # fmt: skip


def distribution_violations(directory: str, banned: set[str]) -> list[str]:
    bad = []
    for path in sorted((ROOT / directory).rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in banned:
                bad.append(f"{path.relative_to(ROOT.parent)} imports {name}")
    return bad


@pytest.mark.parametrize("directory", sorted(DISTRIBUTIONS))
def test_distributions_import_nothing_of_their_dependents(directory: str) -> None:
    assert (ROOT / directory).is_dir()
    assert distribution_violations(directory, DISTRIBUTIONS[directory]) == []


def test_ocpp_is_imported_only_by_the_adapter() -> None:
    adapter = ROOT / "common" / "v2g_common" / "ocpp21"
    bad = [
        f"{path.relative_to(ROOT.parent)} imports {name}"
        for package in PACKAGES
        for path in sorted(package.rglob("*.py"))
        if adapter not in path.parents
        for name in imported_modules(path)
        if name.split(".")[0] == "ocpp"
    ]
    assert bad == []


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_domain_imports_nothing_of_adapters(domain: str) -> None:
    assert (ROOT / domain).is_dir()
    assert violations(domain) == []


def test_the_walker_sees_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import websockets\nfrom vpp_core.csms import x\nfrom . import y\n")
    assert imported_modules(probe) == {"websockets", "vpp_core.csms"}
