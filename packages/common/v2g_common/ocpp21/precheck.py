"""A fast first pass over each payload: jsonschema-rs (Rust) accepts it, or the usual
validator looks again.

fastjsonschema's generated Python takes ≈ 12 µs to validate a ``TransactionEvent`` with four
sampled values, jsonschema-rs ≈ 1.2 µs (``benchmarks/ocpp_codec.py``, ``stages_cpu_us``);
validation was 16-19 % of the CSMS's closed-loop samples. The Rust validator only ever
*accepts*: a payload it refuses (or cannot read, such as an integer beyond 64 bits) goes to
the fastjsonschema validator, which decides and builds the wire error (rule, path, OCPP
code) as before. It checks the same schema: references resolved, every integer bounded to
32 bits (:func:`~v2g_common.ocpp21.schemas.bound_integers`), the same string enums, and
``date-time`` with the very regular expressions the fastjsonschema validator uses for that
direction. That it never accepts what fastjsonschema refuses is tested over the OCPP fuzz
generator's mutated payloads (``tests/unit/common/ocpp21/test_ocpp21_precheck.py``).

jsonschema-rs is optional (a dependency of the core, where the throughput matters): without
it every payload goes to fastjsonschema alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

try:
    import jsonschema_rs as _jsonschema_rs
except ImportError:  # pragma: no cover - the gateway's install need not have it
    _jsonschema_rs = None  # type: ignore[assignment]
#: None: every payload goes to fastjsonschema alone.
jsonschema_rs: Any = _jsonschema_rs

__all__ = ["prechecked"]

Validator = Callable[[Any], Any]


def prechecked(full: Validator, schema: Mapping[str, Any], date_time_regex: str) -> Validator:
    """``full`` behind the fast check of ``schema`` (references inlined, integers bounded,
    enums as shipped); ``full`` itself without jsonschema-rs."""
    if jsonschema_rs is None:
        return full
    matches = re.compile(date_time_regex).match
    is_valid = jsonschema_rs.validator_for(
        dict(schema),
        formats={"date-time": lambda text: matches(text) is not None},
        validate_formats=True,
    ).is_valid

    def validate(payload: Any) -> Any:
        try:
            if is_valid(payload):
                return payload
        except Exception:  # a value jsonschema-rs cannot take: the full validator decides
            pass
        return full(payload)

    return validate
