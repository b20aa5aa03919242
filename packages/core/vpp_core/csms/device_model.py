"""A station's device model as the CSMS keeps it: rows from NotifyReport ``reportData``,
GetVariables results and accepted SetVariables (snake_case wire dicts in, records out). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from vpp_core.fleet.equipment import DeviceVariable

__all__ = ["from_get_results", "from_report", "from_set_results"]

_SET_OK = frozenset({"Accepted", "RebootRequired"})


def _where(component: Mapping[str, Any], variable: Mapping[str, Any]) -> dict[str, Any]:
    evse = component.get("evse") or {}
    return {
        "component": str(component["name"]),
        "component_instance": component.get("instance"),
        "evse_id": evse.get("id"),
        "connector_id": evse.get("connector_id"),
        "variable": str(variable["name"]),
        "variable_instance": variable.get("instance"),
    }


def from_report(report_data: Iterable[Mapping[str, Any]], *, now: datetime) -> list[DeviceVariable]:
    """One record per reported variable attribute."""
    rows = []
    for data in report_data:
        where = _where(data["component"], data["variable"])
        characteristics = data.get("variable_characteristics") or {}
        for attribute in data.get("variable_attribute", []):
            rows.append(
                DeviceVariable(
                    **where,
                    value=attribute.get("value"),
                    reported_at=now,
                    attribute_type=attribute.get("type", "Actual"),
                    mutability=attribute.get("mutability"),
                    data_type=characteristics.get("data_type"),
                    unit=characteristics.get("unit"),
                )
            )
    return rows


def from_get_results(
    results: Iterable[Mapping[str, Any]], *, now: datetime
) -> list[DeviceVariable]:
    """Records for the Accepted entries of a ``getVariableResult``."""
    return [
        DeviceVariable(
            **_where(r["component"], r["variable"]),
            value=r.get("attribute_value"),
            reported_at=now,
            attribute_type=r.get("attribute_type") or "Actual",
        )
        for r in results
        if r["attribute_status"] == "Accepted"
    ]


def from_set_results(
    requests: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]], *, now: datetime
) -> list[DeviceVariable]:
    """Records for the values a station took (Accepted or RebootRequired), in request order
    (the results answer the requests one for one)."""
    return [
        DeviceVariable(
            **_where(request["component"], request["variable"]),
            value=str(request["attribute_value"]),
            reported_at=now,
            attribute_type=request.get("attribute_type") or "Actual",
        )
        for request, result in zip(requests, results, strict=False)
        if result["attribute_status"] in _SET_OK
    ]
