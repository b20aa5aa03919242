"""The OCA JSON schemas shipped inside the ``ocpp`` package, per protocol version.

The schemas are read once at import (≈ 20 ms for both versions); validators are compiled with
``fastjsonschema`` on first use of an action and cached (``warm_up`` compiles ahead of time,
e.g. at CSMS start-up, ≈ 10 to 90 ms per schema).

Before compiling, each schema's ``$ref`` are inlined (fastjsonschema calls one function per
referenced definition and formats the path string of every array item eagerly; inlined, a
MeterValues validation drops from ≈ 23 to ≈ 14 µs; the shipped schemas have no recursive
definitions). fastjsonschema checks a string ``enum`` with a chain of ``==`` (56 comparisons
for a late ``MeasurandEnumType`` value); before compiling, each string-only ``enum`` becomes
a custom ``format`` whose check is one ``frozenset`` lookup (an anchored regex of the
alternatives, used before, cost ≈ 0.4 µs per value: a third of a TransactionEvent's
validation) and keeps its list under ``x-enum`` for the error message. Same accepted
values, same wire error code (``PropertyConstraintViolation``).

Every ``integer`` of every schema is bounded to OCPP's ``integer`` data type, a 32-bit signed
integer (OCPP 2.0.1 / 2.1 part 2, "Data types"): the shipped schemas say only ``"type":
"integer"`` (and at most a ``minimum``), so without this a station's ``evseId`` of 2^63 passed
validation, was answered normally and later broke the fleet database's ``INTEGER`` column. The
bound is added to each integer node before compiling (its own tighter ``minimum``/``maximum``
kept) and marked ``x-int32``; a value outside it is answered ``TypeConstraintViolation`` -- the
OCPP-J code for a field that "violates data type constraints", the same code a ``string[n]``
too long gets -- while a value inside the type but outside the schema's own bound (an
``evseId`` of -1) stays ``PropertyConstraintViolation``. It applies to both roles and every
direction, CALLRESULTs we receive included, because every payload goes through these
validators (one extra comparison per integer; ``benchmarks/ocpp_codec.py``).

Two validators exist per schema: *outgoing* checks ``date-time`` strictly (RFC 3339 with an
offset, what we must send); *incoming* accepts a timestamp without an offset, as some deployed
stations send, but still rejects a string that is no timestamp at all. Everything else is the
schema as shipped.

Each validator is fronted by a jsonschema-rs check of the same schema that may only accept
(:mod:`v2g_common.ocpp21.precheck`): a valid payload costs ≈ 1/4 of the time, and whatever it
does not accept is decided, and its error built, by the fastjsonschema validator as before.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp
from fastjsonschema.draft06 import CodeGeneratorDraft06
from ocpp.v21 import call as v21_call
from ocpp.v21 import call_result as v21_call_result
from ocpp.v21 import datatypes as v21_datatypes
from ocpp.v201 import call as v201_call
from ocpp.v201 import call_result as v201_call_result
from ocpp.v201 import datatypes as v201_datatypes

from v2g_common.ocpp21.errors import (
    FormatViolation,
    OccurrenceConstraintViolation,
    OcppError,
    PropertyConstraintViolation,
    TypeConstraintViolation,
    UnsupportedSubprotocol,
)
from v2g_common.ocpp21.precheck import prechecked

__all__ = [
    "SUBPROTOCOLS",
    "OcppVersion",
    "SchemaCatalogue",
    "Validator",
    "version_for_subprotocol",
]

#: Subprotocols this adapter speaks, in the order a CSMS should prefer them.
SUBPROTOCOLS: tuple[str, ...] = ("ocpp2.1", "ocpp2.0.1")

Validator = Callable[[Any], Any]

#: OCPP's ``integer`` (part 2, data types): 32-bit signed.
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

_LENIENT_DATE_TIME = (
    r"^\d{4}-[01]\d-[0-3]\d[tT ][0-2]\d:[0-5]\d:[0-6]\d(?:\.\d+)?"
    r"(?:[zZ]|[+-][0-2]\d:?[0-5]\d)?\Z"
)

#: What fastjsonschema checks an outgoing ``date-time`` with (the schemas are draft-06).
_STRICT_DATE_TIME: str = CodeGeneratorDraft06.FORMAT_REGEXS["date-time"]

# fastjsonschema's rule name -> the OCPP-J code a peer should get for it.
_CODE_FOR_RULE: dict[str, type[OcppError]] = {
    "type": TypeConstraintViolation,
    "maxLength": TypeConstraintViolation,
    "minLength": TypeConstraintViolation,
    "required": OccurrenceConstraintViolation,
    "minItems": OccurrenceConstraintViolation,
    "maxItems": OccurrenceConstraintViolation,
    "enum": PropertyConstraintViolation,
    "minimum": PropertyConstraintViolation,
    "maximum": PropertyConstraintViolation,
    "exclusiveMinimum": PropertyConstraintViolation,
    "exclusiveMaximum": PropertyConstraintViolation,
    # outside OCPP's 32-bit ``integer`` data type (see the module docstring)
    "int32": TypeConstraintViolation,
    "multipleOf": PropertyConstraintViolation,
    "pattern": PropertyConstraintViolation,
    "format": PropertyConstraintViolation,
    "additionalProperties": FormatViolation,
}


@dataclass(frozen=True)
class OcppVersion:
    """One protocol version: its subprotocol, dataclass modules and schema directory."""

    subprotocol: str
    name: str
    call: types.ModuleType
    call_result: types.ModuleType
    datatypes: types.ModuleType
    schema_dir: Path


_OCPP_DIR = Path(ocpp.__file__).parent

V21 = OcppVersion(
    "ocpp2.1", "2.1", v21_call, v21_call_result, v21_datatypes, _OCPP_DIR / "v21" / "schemas"
)
V201 = OcppVersion(
    "ocpp2.0.1",
    "2.0.1",
    v201_call,
    v201_call_result,
    v201_datatypes,
    _OCPP_DIR / "v201" / "schemas",
)
_VERSIONS = {v.subprotocol: v for v in (V21, V201)}


def version_for_subprotocol(subprotocol: str | None) -> OcppVersion:
    """The version for a negotiated subprotocol; :class:`UnsupportedSubprotocol` otherwise."""
    try:
        return _VERSIONS[subprotocol or ""]
    except KeyError:
        raise UnsupportedSubprotocol(
            f"subprotocol {subprotocol!r} is not one of {', '.join(SUBPROTOCOLS)}"
        ) from None


def load_schemas(directory: Path) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` schema of a directory by file stem (the 2.0.1 files carry a BOM)."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8-sig"))
        for path in sorted(directory.glob("*.json"))
    }


def inline_refs(node: Any, definitions: Mapping[str, Any], depth: int = 0) -> Any:
    """A copy of a schema node with every ``#/definitions/...`` reference replaced inline."""
    if isinstance(node, list):
        return [inline_refs(item, definitions, depth) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if depth > 32:
            raise ValueError(f"schema reference {ref} nests deeper than 32 levels")
        return inline_refs(definitions[ref.rsplit("/", 1)[-1]], definitions, depth + 1)
    return {k: inline_refs(v, definitions, depth) for k, v in node.items() if k != "definitions"}


EnumChecks = dict[str, Callable[[str], bool]]


def prepare_for_compiling(schema: Mapping[str, Any]) -> tuple[Any, EnumChecks]:
    """The schema as compiled (references inlined, string enums as formats) and the
    ``formats`` checks its enums need."""
    checks: EnumChecks = {}
    inlined = inline_refs(schema, schema.get("definitions", {}))
    return bound_integers(enums_as_formats(inlined, checks)), checks


def bound_integers(node: Any) -> Any:
    """A copy of a schema with every ``integer`` bounded to OCPP's 32-bit ``integer`` type.

    A node's own ``minimum``/``maximum`` is kept where it is tighter; the node is marked
    ``x-int32`` so :func:`schema_error` can tell the data type's bound from the schema's.
    """
    if isinstance(node, list):
        return [bound_integers(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: bound_integers(value) for key, value in node.items()}
    kind = node.get("type")
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
        out["minimum"] = max(node.get("minimum", INT32_MIN), INT32_MIN)
        out["maximum"] = min(node.get("maximum", INT32_MAX), INT32_MAX)
        out["x-int32"] = True
    return out


def enums_as_formats(node: Any, checks: EnumChecks) -> Any:
    """A copy of a schema with every string-only ``enum`` turned into a custom ``format``.

    ``checks`` receives each format's check (``frozenset.__contains__``: exact match, one
    hash lookup) under a name unique within the schema.
    """
    if isinstance(node, list):
        return [enums_as_formats(item, checks) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: enums_as_formats(value, checks) for key, value in node.items()}
    values = node.get("enum")
    if (
        isinstance(values, list)
        and values
        and all(isinstance(v, str) for v in values)
        and "pattern" not in node
        and "format" not in node
    ):
        name = f"x-enum-{len(checks)}"
        checks[name] = frozenset(values).__contains__
        del out["enum"]
        out["type"] = "string"
        out["format"] = name
        out["x-enum"] = values
    return out


def schema_error(exc: fastjsonschema.JsonSchemaValueException) -> OcppError:
    """The wire error for a schema violation, naming the path and the rule broken."""
    rule = exc.rule or ""
    path = (exc.name or "data").replace("data", "payload", 1)
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    if rule in ("format", "pattern") and "x-enum" in definition:
        rule = "enum"
        cause = f"{path}: {exc.value!r} is not one of {definition['x-enum']}"
    elif rule in ("minimum", "maximum") and "x-int32" in definition and _outside_int32(exc.value):
        rule = "int32"
        cause = (
            f"{path}: {exc.value!r} is outside OCPP's integer type "
            f"(32-bit signed, {INT32_MIN}..{INT32_MAX})"
        )
    else:
        cause = f"{path}: {exc.message.replace(exc.name or 'data', path, 1)}"
    error_class = _CODE_FOR_RULE.get(rule, FormatViolation)
    return error_class(cause, {"path": path, "rule": rule})


def _outside_int32(value: Any) -> bool:
    return isinstance(value, int | float) and not INT32_MIN <= value <= INT32_MAX


@dataclass
class SchemaCatalogue:
    """The shipped schemas of one version, with lazily compiled, cached validators."""

    version: OcppVersion
    schemas: Mapping[str, dict[str, Any]]
    _validators: dict[tuple[str, bool], Validator] = field(default_factory=dict)

    @classmethod
    def load(cls, version: OcppVersion) -> SchemaCatalogue:
        return cls(version, load_schemas(version.schema_dir))

    def request_schema_name(self, action: str) -> str | None:
        """Schema of a CALL/SEND payload: ``<Action>Request`` (SEND-only ones have no suffix)."""
        for name in (action + "Request", action):
            if name in self.schemas and not name.endswith("Response"):
                return name
        return None

    def response_schema_name(self, action: str) -> str | None:
        name = action + "Response"
        return name if name in self.schemas else None

    def actions(self) -> frozenset[str]:
        """Every action name that has a request schema in this version."""
        names = {n.removesuffix("Request") for n in self.schemas if not n.endswith("Response")}
        return frozenset(names)

    def validator(self, schema_name: str, *, outgoing: bool) -> Validator:
        """The compiled validator for a schema; raises ``JsonSchemaValueException``."""
        key = (schema_name, outgoing)
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = self._compile(schema_name, outgoing=outgoing)
        return validator

    def _compile(self, schema_name: str, *, outgoing: bool) -> Validator:
        shipped = self.schemas[schema_name]
        schema, enum_checks = prepare_for_compiling(shipped)
        formats: dict[str, Any] = dict(enum_checks)
        if not outgoing:
            formats["date-time"] = _LENIENT_DATE_TIME
        full = fastjsonschema.compile(schema, use_default=False, formats=formats)
        same_checks = bound_integers(inline_refs(shipped, shipped.get("definitions", {})))
        date_time = _STRICT_DATE_TIME if outgoing else _LENIENT_DATE_TIME
        return prechecked(full, same_checks, date_time)

    def warm_up(self, schema_names: Iterable[str], *, outgoing: bool) -> None:
        """Compile validators ahead of time so the first message pays nothing extra."""
        for name in schema_names:
            self.validator(name, outgoing=outgoing)
