"""Device-model references for Get/SetVariables requests in tests (snake_case wire dicts)."""

from __future__ import annotations

from typing import Any

__all__ = ["ref"]


def ref(component: str, variable: str, **extra: Any) -> dict[str, Any]:
    """``{component, variable}`` with an optional ``evse`` id, variable ``instance`` and
    ``attribute_type``."""
    c: dict[str, Any] = {"name": component}
    if "evse" in extra:
        c["evse"] = {"id": extra["evse"]}
    v: dict[str, Any] = {"name": variable}
    if "instance" in extra:
        v["instance"] = extra["instance"]
    out: dict[str, Any] = {"component": c, "variable": v}
    if "attribute_type" in extra:
        out["attribute_type"] = extra["attribute_type"]
    return out
