"""The register map data files: conformance to the SunSpec model definitions, and validation."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from v2g_gateway.hw.errors import RegisterMapError
from v2g_gateway.hw.power_module.register_map import load_register_map, standard_register_map


def _sunspec_points(model_id: int) -> dict[str, tuple[int, str]]:
    """Offsets and types from pysunspec2's own model definitions (top-level points)."""
    text = resources.files("sunspec2").joinpath(f"models/json/model_{model_id}.json").read_text()
    offset, points = 0, {}
    for p in json.loads(text)["group"]["points"]:
        points[p["name"]] = (offset, p["type"])
        offset += p["size"]
    return points


@pytest.mark.parametrize("model_id", [1, 701, 702, 703, 704, 713])
def test_standard_map_matches_sunspec_model_definitions(model_id: int) -> None:
    spec = standard_register_map().model(model_id)
    official = _sunspec_points(model_id)
    for name, point in spec.points.items():
        offset, ptype = official[name]
        assert (point.offset, point.type) == (offset, ptype), name
    text = resources.files("sunspec2").joinpath(f"models/json/model_{model_id}.json").read_text()
    total = sum(p["size"] for p in json.loads(text)["group"]["points"])
    groups = json.loads(text)["group"].get("groups", [])
    total += sum(sum(p["size"] for p in g["points"]) for g in groups)
    assert spec.length == total - 2


def test_vendor_map_is_another_data_file_with_its_own_sign() -> None:
    path = (
        Path(__file__).resolve().parents[4]
        / "packages/gateway/v2g_gateway/hw/power_module/vendor_example_map.json"
    )
    vendor = load_register_map(path)
    assert vendor.power_sign == "absorption_positive"
    assert vendor.model(701).point("W").offset == 41
    assert standard_register_map().model(701).point("W").offset == 10


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["models"]["704"]["points"]["WSet"].update(type="float99"), "unknown type"),
        (lambda d: d["models"]["704"]["points"]["WSet"].update(offset=70), "past the model length"),
        (lambda d: d["models"]["704"]["points"]["WSet"].update(sf="Nope_SF"), "not mapped"),
        (lambda d: d.update(power_sign="sideways"), "power_sign"),
    ],
)
def test_bad_map_file_names_the_problem(tmp_path: Path, mutate: object, message: str) -> None:
    source = resources.files("v2g_gateway.hw.power_module").joinpath("sunspec_map.json")
    data = json.loads(source.read_text())
    mutate(data)  # type: ignore[operator]
    path = tmp_path / "map.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RegisterMapError, match=message):
        load_register_map(path)
