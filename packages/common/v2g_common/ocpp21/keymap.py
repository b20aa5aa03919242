"""camelCase (wire) <-> snake_case (Python) key translation, derived from the shipped schemas.

The ``ocpp`` package converts keys with regular expressions and gets 43 OCPP 2.1 keys wrong
on the way out (``limit_L2`` becomes ``limitL2``, ``LimitAtSoCType.soc`` becomes ``SoC``, ...).
Some names also depend on where they sit (``soc`` is ``soc`` in ``LimitAtSoCType`` but ``soC``
in ``BatteryDataType``), so no flat table can be right. Instead every object of every schema
gets an :class:`ObjectShape`: for each property its wire key, its Python name and the shape of
its value. The Python name is the field of the library's dataclass for that object (matched
ignoring case and underscores, so ``iso_15118_schema_version`` pairs with
``iso15118SchemaVersion``); objects without a dataclass fall back to the library's rule.

Outgoing, a shape accepts the dataclass field name, the library-style snake name and the
wire key itself, so a payload built from dataclasses, snake dicts or camel dicts all come out
right. Keys a shape does not know (vendor keys inside ``customData``) pass unchanged and are
left to schema validation.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any

from ocpp.charge_point import camel_to_snake_case

__all__ = ["ObjectShape", "ShapeBuilder", "payload_from_wire", "payload_to_wire"]

_Entry = tuple[str, "ObjectShape | None"]


class ObjectShape:
    """Key tables of one schema object: ``from_wire[camel]`` and ``to_wire[name]``.

    ``scalar_names`` is the part of ``from_wire`` whose values hold no object (after schema
    validation they are scalars or lists of scalars): the hot path renames those without
    looking at the value.
    """

    __slots__ = ("from_wire", "name", "scalar_names", "to_wire")

    def __init__(self, name: str) -> None:
        self.name = name
        self.from_wire: dict[str, _Entry] = {}
        self.to_wire: dict[str, _Entry] = {}
        self.scalar_names: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ObjectShape({self.name}: {sorted(self.from_wire)})"


@lru_cache(maxsize=4096)
def library_snake(key: str) -> str:
    """The ``ocpp`` package's camel->snake rule for one key (correct on the way in)."""
    return next(iter(camel_to_snake_case({key: None})))


def _normalised(name: str) -> str:
    return name.replace("_", "").lower()


class ShapeBuilder:
    """Builds the shapes of one schema document (definitions are resolved per document)."""

    def __init__(self, schema: Mapping[str, Any], datatypes: types.ModuleType) -> None:
        self._definitions: Mapping[str, Any] = schema.get("definitions", {})
        self._datatypes = datatypes
        self._memo: dict[str, ObjectShape | None] = {}

    def shape_of(
        self, node: Mapping[str, Any], dataclass: type | None = None
    ) -> ObjectShape | None:
        """The shape of a schema node (object, array of objects, ``$ref``), None for scalars."""
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in self._memo:
                self._memo[name] = None  # a cycle resolves to "no shape" rather than recursing
                definition = self._definitions[name]
                self._memo[name] = self._object_shape(definition, name, dataclass)
            return self._memo[name]
        if "items" in node and isinstance(node["items"], Mapping):
            return self.shape_of(node["items"], dataclass)
        return self._object_shape(node, node.get("javaType", "inline"), dataclass)

    def _object_shape(
        self, node: Mapping[str, Any], name: str, dataclass: type | None
    ) -> ObjectShape | None:
        properties = node.get("properties")
        if "items" in node and isinstance(node["items"], Mapping):
            return self.shape_of(node["items"], dataclass)
        if not isinstance(properties, Mapping):
            return None
        if dataclass is None:
            dataclass = getattr(self._datatypes, name, None)
        fields = _field_names(dataclass)
        shape = ObjectShape(name)
        for key, sub in properties.items():
            child = self.shape_of(sub)
            shape.from_wire[key] = (_python_name(key, fields), child)
            if child is None and not _may_hold_objects(sub, self._definitions):
                shape.scalar_names[key] = shape.from_wire[key][0]
        _fill_to_wire(shape)
        return shape


def _may_hold_objects(node: Mapping[str, Any], definitions: Mapping[str, Any]) -> bool:
    """Whether a property's valid values can contain an object (then it is walked)."""
    ref = node.get("$ref")
    if isinstance(ref, str):
        node = definitions.get(ref.rsplit("/", 1)[-1], {})
    items = node.get("items")
    if isinstance(items, Mapping):
        return _may_hold_objects(items, definitions)
    kind = node.get("type")
    return kind is None or kind == "object" or (isinstance(kind, list) and "object" in kind)


def _field_names(dataclass: type | None) -> tuple[str, ...]:
    if dataclass is None or not dataclasses.is_dataclass(dataclass):
        return ()
    return tuple(f.name for f in dataclasses.fields(dataclass))


def _python_name(key: str, fields: tuple[str, ...]) -> str:
    matches = [f for f in fields if _normalised(f) == _normalised(key)]
    return matches[0] if len(matches) == 1 else library_snake(key)


def _fill_to_wire(shape: ObjectShape) -> None:
    """Primary names first (they must be unique), then aliases where they do not collide."""
    for key, (name, child) in shape.from_wire.items():
        if name in shape.to_wire:
            raise ValueError(f"{shape.name}: two wire keys map to {name!r}")
        shape.to_wire[name] = (key, child)
    for key, (_name, child) in shape.from_wire.items():
        for alias in (library_snake(key), key):
            shape.to_wire.setdefault(alias, (key, child))


_NO_KEYS: dict[str, _Entry] = {}


_NO_NAMES: dict[str, str] = {}


def payload_from_wire(payload: Mapping[str, Any], shape: ObjectShape | None) -> dict[str, Any]:
    """A *schema-valid* wire object with every key (recursively) renamed to its Python name."""
    if shape is None:
        table, scalars = _NO_KEYS, _NO_NAMES
    else:
        table, scalars = shape.from_wire, shape.scalar_names
    out: dict[str, Any] = {}
    for key, value in payload.items():
        scalar_name = scalars.get(key)
        if scalar_name is not None:
            out[scalar_name] = value
            continue
        try:
            name, child = table[key]
        except KeyError:
            name, child = library_snake(key), None
        kind = type(value)
        if kind is dict:
            value = payload_from_wire(value, child)
        elif kind is list:
            value = [payload_from_wire(v, child) if type(v) is dict else v for v in value]
        out[name] = value
    return out


_FIELDS: dict[type, tuple[str, ...]] = {}


def _dataclass_fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def payload_to_wire(obj: Any, shape: ObjectShape | None) -> dict[str, Any]:
    """A dataclass or mapping as a wire object: None dropped, keys in their schema spelling."""
    table = shape.to_wire if shape is not None else _NO_KEYS
    if type(obj) is dict:  # the common case first: checks are a third of the cost here
        items: Any = obj.items()
    elif hasattr(type(obj), "__dataclass_fields__"):
        items = ((name, getattr(obj, name)) for name in _dataclass_fields(type(obj)))
    elif isinstance(obj, Mapping):
        items = obj.items()
    else:
        raise TypeError(f"expected a dataclass or a mapping, got {type(obj).__name__}")
    out: dict[str, Any] = {}
    for name, value in items:
        if value is None:
            continue
        entry = table.get(name)
        key, child = entry if entry is not None else (name, None)
        out[key] = _value_to_wire(value, child)
    return out


def _value_to_wire(value: Any, child: ObjectShape | None) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is dict:
        return payload_to_wire(value, child)
    if kind is list:
        return [_value_to_wire(v, child) for v in value if v is not None]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_value_to_wire(v, child) for v in value if v is not None]
    if isinstance(value, Mapping) or hasattr(kind, "__dataclass_fields__"):
        return payload_to_wire(value, child)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: OCPP timestamps need an offset")
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
