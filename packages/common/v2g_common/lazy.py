"""Package ``__init__`` files that import on first use (PEP 562): a package can name what it
offers without every importer of one of its submodules paying for all the others (the
gateway's control process imports ``v2g_gateway.station.config`` through the config, not
the station's OCPP code; a charger imports ``v2g_common.pki.tls``, not ``cryptography``).

    if TYPE_CHECKING:                     # what type checkers and readers see
        from pkg.mod import Name
    __all__ = ["Name"]
    __getattr__ = lazy_exports(__name__, {"Name": "mod"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, module_of: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from ``package.<module_of[name]>``."""

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # the next access skips this function
        return value

    return __getattr__
