"""Register maps as data: which point sits at which offset of which SunSpec model.

The standard map ships as ``sunspec_map.json``; a vendor whose offsets or sign differ ships
another file of the same shape (see ``vendor_example_map.json``) named in the config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from v2g_gateway.hw.errors import RegisterMapError

__all__ = [
    "POINT_TYPES",
    "ModelSpec",
    "PointSpec",
    "RegisterMap",
    "load_register_map",
    "standard_register_map",
]

#: Register count of each SunSpec point type (strings carry their own size).
POINT_TYPES: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "enum16": 1,
    "bitfield16": 1,
    "sunssf": 1,
    "int32": 2,
    "uint32": 2,
    "bitfield32": 2,
    "uint64": 4,
    "string": 0,
}

PowerSign = Literal["injection_positive", "absorption_positive"]


@dataclass(frozen=True, slots=True)
class PointSpec:
    """One point: offset from the model's ID register, SunSpec type, register count, SF name."""

    name: str
    offset: int
    type: str
    size: int
    sf: str | None = None


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One SunSpec model: its id, its length L (registers after the ID/L header), its points."""

    model_id: int
    length: int
    points: dict[str, PointSpec]

    def point(self, name: str) -> PointSpec:
        try:
            return self.points[name]
        except KeyError:
            raise RegisterMapError(f"model {self.model_id} has no point {name!r}") from None


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A named set of models. ``power_sign`` says which way the module's ``W``/``WSet`` count:
    SunSpec DER convention is injection (discharge) positive, the opposite of ours."""

    name: str
    power_sign: PowerSign
    models: dict[int, ModelSpec]

    def model(self, model_id: int) -> ModelSpec:
        try:
            return self.models[model_id]
        except KeyError:
            raise RegisterMapError(f"register map {self.name!r} has no model {model_id}") from None


def _parse_point(model_id: int, name: str, raw: dict[str, object]) -> PointSpec:
    ptype = str(raw.get("type", ""))
    if ptype not in POINT_TYPES:
        raise RegisterMapError(f"model {model_id} point {name}: unknown type {ptype!r}")
    size = int(raw["size"]) if ptype == "string" else POINT_TYPES[ptype]  # type: ignore[call-overload]
    offset = raw.get("offset")
    if not isinstance(offset, int) or offset < 0 or size <= 0:
        raise RegisterMapError(f"model {model_id} point {name}: bad offset or size")
    sf = raw.get("sf")
    return PointSpec(name, offset, ptype, size, str(sf) if sf is not None else None)


def _parse_model(key: str, raw: dict[str, object]) -> ModelSpec:
    model_id = int(key)
    length = raw.get("length")
    points_raw = raw.get("points")
    if not isinstance(length, int) or not isinstance(points_raw, dict):
        raise RegisterMapError(f"model {key}: needs integer 'length' and a 'points' table")
    points = {name: _parse_point(model_id, name, p) for name, p in points_raw.items()}
    for p in points.values():
        if p.offset + p.size > length + 2:
            raise RegisterMapError(f"model {key} point {p.name} ends past the model length")
        if p.sf is not None and p.sf not in points:
            raise RegisterMapError(f"model {key} point {p.name}: scale factor {p.sf} not mapped")
    return ModelSpec(model_id, length, points)


def parse_register_map(data: dict[str, object], *, source: str) -> RegisterMap:
    """Validate a decoded map document; :class:`RegisterMapError` names the file and point."""
    try:
        models_raw = data["models"]
        sign = data.get("power_sign", "injection_positive")
        if sign not in ("injection_positive", "absorption_positive") or not isinstance(
            models_raw, dict
        ):
            raise RegisterMapError("bad 'power_sign' or 'models'")
        models = {int(k): _parse_model(k, v) for k, v in models_raw.items()}
        return RegisterMap(str(data.get("name", source)), sign, models)
    except (KeyError, TypeError, ValueError, RegisterMapError) as exc:
        raise RegisterMapError(f"{source}: {exc}") from None


def load_register_map(path: str | Path) -> RegisterMap:
    """Load a register map JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegisterMapError(f"{path}: {exc}") from None
    return parse_register_map(data, source=str(path))


def standard_register_map() -> RegisterMap:
    """The packaged standard SunSpec map."""
    text = resources.files(__package__).joinpath("sunspec_map.json").read_text("utf-8")
    return parse_register_map(json.loads(text), source="sunspec_map.json")
