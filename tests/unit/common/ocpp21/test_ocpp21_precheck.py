"""The jsonschema-rs pre-check changes no verdict: every payload the OCPP fuzz generator makes
(valid CALLs and mutations: removed and added keys, integers beyond 32 and 64 bits, floats,
odd strings and timestamps, deep nesting) gets the same outcome, and the same error, from the
pre-checked validators as from fastjsonschema alone, in both directions and both versions."""

from __future__ import annotations

import copy
from typing import Any

import fastjsonschema
import pytest

from tests.support.ocpp_fuzz.frames import FrameFuzzer, _locate, _paths, seed_calls
from v2g_common.ocpp21 import precheck
from v2g_common.ocpp21.schemas import SchemaCatalogue, version_for_subprotocol

PAYLOADS_PER_ACTION = 150
#: Put in place of each integer, number and string of a valid payload: the edges where two
#: validators could part (OCPP's 32-bit bound, 64-bit ints, integral floats, timestamps with
#: and without an offset, an enum value's case).
_EDGE_NUMBERS = (2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63, 2**64, 1.0, 1.5, True, -0.0)
_EDGE_STRINGS = (
    "2026-03-01T12:00:00", "2026-03-01T12:00:00Z", "2026-03-01t12:00:00z",
    "2026-03-01 12:00:00Z", "2026-03-01T12:00:00+0100", "2026-03-01T12:00:00+01:00",
    "2026-03-01T12:00:60.5-23:59", "2026-03-01T24:00:00Z", "2026-03-01", "accepted", "",
)  # fmt: skip


def _outcome(validator: Any, payload: Any) -> tuple[Any, ...]:
    try:
        validator(copy.deepcopy(payload))
    except fastjsonschema.JsonSchemaValueException as exc:
        return ("refused", exc.rule, exc.name, exc.message)
    return ("accepted",)


def _payloads(action: str, seed_payload: dict[str, Any], seed: int) -> list[Any]:
    fuzzer = FrameFuzzer(seed, prefix="p", tx_id="tx-1", max_frame_bytes=65536)
    payloads: list[Any] = [seed_payload]
    for _ in range(PAYLOADS_PER_ACTION):
        mutated = fuzzer._mutate(copy.deepcopy(seed_payload))
        if fuzzer.rng.random() < 0.5:
            mutated = fuzzer._mutate(mutated)
        payloads.append(mutated)
    return payloads + _edges(seed_payload)


def _edges(seed_payload: dict[str, Any]) -> list[Any]:
    out = []
    for path in _paths(seed_payload):
        parent, key = _locate(seed_payload, path)
        value = parent[key]
        if isinstance(value, int | float):
            edges: tuple[Any, ...] = _EDGE_NUMBERS
        elif isinstance(value, str):
            edges = (*_EDGE_STRINGS, value.upper(), value.lower(), value + " ")
        else:
            continue
        for edge in edges:
            changed = copy.deepcopy(seed_payload)
            changed_parent, _ = _locate(changed, path)
            changed_parent[key] = edge
            out.append(changed)
    return out


@pytest.mark.parametrize("subprotocol", ["ocpp2.1", "ocpp2.0.1"])
def test_prechecked_validators_give_fastjsonschemas_verdicts(
    subprotocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = version_for_subprotocol(subprotocol)
    fast = SchemaCatalogue.load(version)
    names = [fast.request_schema_name(action) for action, _ in seed_calls("tx-1")]
    for outgoing in (False, True):  # compiled (pre-checked) before jsonschema-rs goes away
        fast.warm_up([name for name in names if name is not None], outgoing=outgoing)
    monkeypatch.setattr(precheck, "jsonschema_rs", None)
    alone = SchemaCatalogue.load(version)
    accepted = compared = 0
    for number, (action, seed_payload) in enumerate(seed_calls("tx-1")):
        schema_name = fast.request_schema_name(action)
        if schema_name is None:
            continue
        for payload in _payloads(action, seed_payload, seed=number):
            for outgoing in (False, True):
                expected = _outcome(alone.validator(schema_name, outgoing=outgoing), payload)
                got = _outcome(fast.validator(schema_name, outgoing=outgoing), payload)
                assert got == expected, (action, outgoing, payload)
                accepted += expected == ("accepted",)
                compared += 1
    assert accepted > 100  # both verdicts were exercised
    assert compared - accepted > 1000
