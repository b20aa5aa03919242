"""The station's device model (OCPP 2.x part 1 §4, use cases B05 to B08): components with
variables, read with GetVariables, written with SetVariables and reported with GetBaseReport.

Pure apart from the :class:`WrittenValues` port that keeps what the CSMS wrote (the station
persists it in its state database): each :class:`Variable` reads its value from the running
station and, when writable, applies a checked new value to it. Wire shapes are the adapter's
snake_case dicts (``ComponentType``, ``VariableType``, ``ReportDataType``...).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DeviceModel",
    "Variable",
    "VariableKey",
    "WrittenValues",
    "check_value",
]

log = logging.getLogger(__name__)

#: ``attributeValue`` is a string of at most this many characters (both versions).
MAX_VALUE_LENGTH = 2500
_WRITABLE = frozenset({"ReadWrite", "WriteOnly"})
_SUMMARY_VARIABLES = frozenset({"AvailabilityState", "Available", "Problem", "Tripped"})


@dataclass(frozen=True, slots=True)
class VariableKey:
    """Where a variable sits: component (+ instance, EVSE, connector) and variable name."""

    component: str
    variable: str
    evse_id: int | None = None
    connector_id: int | None = None
    component_instance: str | None = None
    variable_instance: str | None = None

    @classmethod
    def from_wire(cls, component: Mapping[str, Any], variable: Mapping[str, Any]) -> VariableKey:
        evse = component.get("evse") or {}
        return cls(
            component=str(component["name"]),
            variable=str(variable["name"]),
            evse_id=evse.get("id"),
            connector_id=evse.get("connector_id"),
            component_instance=component.get("instance"),
            variable_instance=variable.get("instance"),
        )

    def component_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"name": self.component}
        if self.component_instance is not None:
            wire["instance"] = self.component_instance
        if self.evse_id is not None:
            evse: dict[str, Any] = {"id": self.evse_id}
            if self.connector_id is not None:
                evse["connector_id"] = self.connector_id
            wire["evse"] = evse
        return wire

    def variable_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"name": self.variable}
        if self.variable_instance is not None:
            wire["instance"] = self.variable_instance
        return wire

    @property
    def stored_name(self) -> str:
        """The key a written value is persisted under."""
        parts = [
            self.component,
            self.component_instance or "",
            "" if self.evse_id is None else str(self.evse_id),
            "" if self.connector_id is None else str(self.connector_id),
            self.variable,
            self.variable_instance or "",
        ]
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Variable:
    """One variable's ``Actual`` attribute.

    ``read`` gives the current value as OCPP text; ``apply`` (writable variables only) takes
    a value already checked against the characteristics and puts it into effect.
    ``reboot_required``: the value is stored now and used from the next connection or start.
    """

    key: VariableKey
    data_type: str
    read: Callable[[], str]
    apply: Callable[[str], None] | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] = ()
    constant: bool = False
    reboot_required: bool = False

    @property
    def mutability(self) -> str:
        return "ReadOnly" if self.apply is None else "ReadWrite"

    def characteristics(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"data_type": self.data_type, "supports_monitoring": False}
        if self.unit is not None:
            wire["unit"] = self.unit
        if self.min_limit is not None:
            wire["min_limit"] = self.min_limit
        if self.max_limit is not None:
            wire["max_limit"] = self.max_limit
        if self.values_list:
            wire["values_list"] = ",".join(self.values_list)
        return wire


class WrittenValues(Protocol):
    """Where values written by the CSMS are kept across restarts."""

    def load(self) -> Mapping[str, str]: ...

    def save(self, name: str, value: str) -> None: ...


def check_value(variable: Variable, value: str) -> str | None:
    """Why ``value`` cannot be written to ``variable`` (None when it can)."""
    if len(value) > MAX_VALUE_LENGTH:
        return f"longer than {MAX_VALUE_LENGTH} characters"
    kind = variable.data_type
    if kind == "boolean":
        return None if value in ("true", "false") else "not true or false"
    if kind in ("integer", "decimal"):
        return _check_number(variable, value)
    if kind == "OptionList":
        return None if value in variable.values_list else f"not one of {variable.values_list}"
    if kind in ("MemberList", "SequenceList"):
        members = [m.strip() for m in value.split(",") if m.strip()]
        unknown = [m for m in members if m not in variable.values_list]
        return f"unknown members {unknown}" if unknown else None
    return None


def _check_number(variable: Variable, value: str) -> str | None:
    try:
        number = int(value) if variable.data_type == "integer" else float(value)
    except ValueError:
        return f"not an {variable.data_type}"
    if not math.isfinite(number):
        return "not finite"
    if variable.min_limit is not None and number < variable.min_limit:
        return f"below {variable.min_limit:g}"
    if variable.max_limit is not None and number > variable.max_limit:
        return f"above {variable.max_limit:g}"
    return None


class DeviceModel:
    """The variables a station exposes, answering GetVariables / SetVariables / reports."""

    def __init__(self, variables: Iterable[Variable], written: WrittenValues) -> None:
        self._variables = {v.key: v for v in variables}
        self._components = {
            (k.component, k.component_instance, k.evse_id, k.connector_id) for k in self._variables
        }
        self._written = written
        self._restore()

    def _restore(self) -> None:
        """Apply what the CSMS wrote before a restart (a value the code no longer accepts is
        skipped with a warning; the configured one stays)."""
        by_name = {v.key.stored_name: v for v in self._variables.values()}
        for name, value in self._written.load().items():
            variable = by_name.get(name)
            if variable is None or variable.apply is None:
                log.warning(
                    "stored device-model value for %s ignored: no such writable variable", name
                )
                continue
            problem = check_value(variable, value)
            if problem is not None:
                log.warning("stored device-model value %s=%r ignored: %s", name, value, problem)
                continue
            variable.apply(value)

    def __len__(self) -> int:
        return len(self._variables)

    def get(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``getVariableResult`` entries for ``getVariableData`` entries, in order."""
        return [self._get_one(request) for request in requests]

    def _get_one(self, request: Mapping[str, Any]) -> dict[str, Any]:
        result, status, variable = self._resolve(request)
        result["attribute_status"] = status
        if status == "Accepted" and variable is not None:
            result["attribute_value"] = variable.read()[:MAX_VALUE_LENGTH]
        return result

    def _resolve(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], str, Variable | None]:
        """The result entry begun for a get/set request, its status so far and the variable."""
        result: dict[str, Any] = {
            "component": request["component"],
            "variable": request["variable"],
        }
        attribute = request.get("attribute_type")
        if attribute is not None:
            result["attribute_type"] = attribute
        key = VariableKey.from_wire(request["component"], request["variable"])
        status, variable = self._lookup(key)
        if variable is not None and attribute not in (None, "Actual"):
            status = "NotSupportedAttributeType"
        return result, status, variable

    def set(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``setVariableResult`` entries for ``setVariableData`` entries, in order; accepted
        values are applied and persisted one by one."""
        return [self._set_one(request) for request in requests]

    def _set_one(self, request: Mapping[str, Any]) -> dict[str, Any]:
        result, status, variable = self._resolve(request)
        if status != "Accepted" or variable is None:
            result["attribute_status"] = status
            return result
        value = str(request["attribute_value"])
        problem = "read-only" if variable.apply is None else check_value(variable, value)
        if problem is not None:
            result["attribute_status"] = "Rejected"
            result["attribute_status_info"] = {
                "reason_code": "ReadOnly" if variable.apply is None else "InvalidValue",
                "additional_info": problem[:1024],
            }
            return result
        assert variable.apply is not None
        variable.apply(value)
        self._written.save(variable.key.stored_name, value)
        log.info("device model: %s set to %r by the CSMS", variable.key.stored_name, value)
        result["attribute_status"] = "RebootRequired" if variable.reboot_required else "Accepted"
        return result

    def _lookup(self, key: VariableKey) -> tuple[str, Variable | None]:
        variable = self._variables.get(key)
        if variable is not None:
            return "Accepted", variable
        component = (key.component, key.component_instance, key.evse_id, key.connector_id)
        return ("UnknownVariable" if component in self._components else "UnknownComponent"), None

    def report(self, report_base: str) -> list[dict[str, Any]]:
        """``reportData`` entries for a GetBaseReport (ConfigurationInventory: the writable
        variables; FullInventory: all; SummaryInventory: availability and problems)."""
        chosen = [v for v in self._variables.values() if _in_report(v, report_base)]
        return [_report_data(v) for v in chosen]


def _in_report(variable: Variable, report_base: str) -> bool:
    if report_base == "ConfigurationInventory":
        return variable.mutability in _WRITABLE
    if report_base == "SummaryInventory":
        return variable.key.variable in _SUMMARY_VARIABLES
    return True


def _report_data(variable: Variable) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "type": "Actual",
        "value": variable.read()[:MAX_VALUE_LENGTH],
        "mutability": variable.mutability,
        "persistent": True,
        "constant": variable.constant,
    }
    return {
        "component": variable.key.component_wire(),
        "variable": variable.key.variable_wire(),
        "variable_attribute": [attribute],
        "variable_characteristics": variable.characteristics(),
    }
