"""v2g-ev15118 has two sides that never share a virtualenv: what runs in .venv-iso15118
(the SECC and EVCC processes, on iso15118 and pydantic 1) imports nothing of the gateway, the
common package or pydantic; the wire protocol and the mapping, which both sides import, are
the standard library only."""

from __future__ import annotations

import sys

import pytest

from tests.unit.test_import_boundaries import ROOT, imported_modules

PACKAGE = ROOT / "ev15118" / "v2g_ev15118"
#: Modules of the SECC/EVCC processes (.venv-iso15118).
STACK_SIDE = ("secc", "evcc", "codec", "channel", "wire", "mapping", "tls")
#: Imported by both sides.
SHARED = ("wire", "mapping")


def _top_levels(module: str) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(PACKAGE / f"{module}.py")}


@pytest.mark.parametrize("module", STACK_SIDE)
def test_the_stack_side_imports_nothing_of_the_gateway(module: str) -> None:
    banned = {"v2g_gateway", "v2g_common", "pydantic", "v2g_sim", "vpp_core"}
    assert _top_levels(module) & banned == set()


@pytest.mark.parametrize("module", SHARED)
def test_the_shared_modules_are_standard_library_only(module: str) -> None:
    own = {"v2g_ev15118", "__future__"}
    assert _top_levels(module) - own - set(sys.stdlib_module_names) == set()
