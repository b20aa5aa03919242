"""Pure SunSpec point codec: registers <-> raw values <-> scaled engineering values. No I/O.

Registers are 16-bit big-endian words, multi-register values most significant word first
(SunSpec). Each type has a "not implemented" value, decoded as ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from v2g_gateway.hw.power_module.register_map import ModelSpec, PointSpec

__all__ = [
    "ALARM_CODES",
    "INV_ST_FAULT",
    "SUNS_MARKER",
    "decode_model",
    "decode_point",
    "encode_point",
    "fault_codes",
    "scale",
    "unscale",
]

#: "SunS" as two registers.
SUNS_MARKER = (0x5375, 0x6E53)

#: 701 ``InvSt`` value meaning the inverter is in fault.
INV_ST_FAULT = 6

#: 701 ``Alrm`` bit -> stable event code. Bits without a code of their own (frequency,
#: disconnects, hardware test ...) map to ``MODULE_FAULT``.
ALARM_CODES: dict[int, str] = {
    0: "GROUND_FAULT",
    1: "DC_OVER_VOLTAGE",
    7: "OVER_TEMP",
    10: "AC_OVER_VOLTAGE",
    11: "AC_UNDER_VOLTAGE",
}

_NOT_IMPLEMENTED: dict[str, int] = {
    "int16": 0x8000,
    "sunssf": 0x8000,
    "uint16": 0xFFFF,
    "enum16": 0xFFFF,
    "bitfield16": 0xFFFF,
    "int32": 0x80000000,
    "uint32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "uint64": 0xFFFFFFFFFFFFFFFF,
}
_SIGNED = {"int16", "sunssf", "int32"}


def _join(words: Sequence[int]) -> int:
    value = 0
    for word in words:
        if not 0 <= word <= 0xFFFF:
            raise ValueError(f"register value {word} outside 0..65535")
        value = (value << 16) | word
    return value


def decode_point(words: Sequence[int], point: PointSpec) -> int | str | None:
    """Decode the ``point.size`` words of one point to its raw value (``None`` = not implemented).

    Strings are NUL-padded UTF-8, 2 characters per register.
    """
    if len(words) != point.size:
        raise ValueError(f"{point.name}: expected {point.size} registers, got {len(words)}")
    if point.type == "string":
        raw = b"".join(w.to_bytes(2, "big") for w in words).split(b"\0", 1)[0]
        return raw.decode("utf-8", errors="replace") or None
    unsigned = _join(words)
    if unsigned == _NOT_IMPLEMENTED[point.type]:
        return None
    bits = 16 * point.size
    if point.type in _SIGNED and unsigned >= 1 << (bits - 1):
        return unsigned - (1 << bits)
    return unsigned


def encode_point(value: int | str | None, point: PointSpec) -> list[int]:
    """Encode a raw value (``None`` = not implemented) into ``point.size`` registers."""
    if point.type == "string":
        data = str(value or "").encode("utf-8")
        if len(data) > 2 * point.size:
            raise ValueError(f"{point.name}: string longer than {2 * point.size} bytes")
        data = data.ljust(2 * point.size, b"\0")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    bits = 16 * point.size
    if value is None:
        unsigned = _NOT_IMPLEMENTED[point.type]
    else:
        if not isinstance(value, int):
            raise TypeError(f"{point.name}: raw value must be int, got {value!r}")
        low, high = (
            (-(1 << (bits - 1)), 1 << (bits - 1)) if point.type in _SIGNED else (0, 1 << bits)
        )
        if not low <= value < high:
            raise ValueError(f"{point.name}: {value} does not fit {point.type}")
        unsigned = value & ((1 << bits) - 1)
    return [(unsigned >> (16 * i)) & 0xFFFF for i in reversed(range(point.size))]


def scale(raw: int, sf: int) -> float:
    """Engineering value of a raw point: ``raw * 10**sf``."""
    return round(raw * 10.0**sf, -sf) + 0.0 if sf < 0 else float(raw * 10**sf)


def unscale(value: float, sf: int) -> int:
    """Raw register value for an engineering value (rounded to the nearest step)."""
    return round(value / 10.0**sf)


def decode_model(
    words: Sequence[int],
    spec: ModelSpec,
    *,
    first_offset: int = 0,
    known_sf: Mapping[str, int] | None = None,
) -> dict[str, float | int | str | None]:
    """Decode every mapped point found in ``words`` (which start at ``first_offset`` of the
    model) and apply scale factors, taken from ``words`` or else from ``known_sf``; a point
    whose scale factor is unknown or not implemented is ``None``."""
    raw: dict[str, int | str | None] = {}
    for point in spec.points.values():
        start = point.offset - first_offset
        if start >= 0 and start + point.size <= len(words):
            raw[point.name] = decode_point(words[start : start + point.size], point)
    values: dict[str, float | int | str | None] = {}
    for name, value in raw.items():
        point = spec.points[name]
        if point.sf is None or value is None:
            values[name] = value
            continue
        sf = raw[point.sf] if point.sf in raw else (known_sf or {}).get(point.sf)
        values[name] = scale(int(value), int(sf)) if isinstance(sf, int) else None
    return values


def fault_codes(inv_st: int | None, alrm: int | None) -> frozenset[str]:
    """Stable event codes for the 701 state and alarm bits; ``InvSt`` = FAULT with no known
    alarm bit still yields ``MODULE_FAULT``."""
    codes: set[str] = set()
    for bit in range(32):
        if alrm is not None and alrm & (1 << bit):
            codes.add(ALARM_CODES.get(bit, "MODULE_FAULT"))
    if inv_st == INV_ST_FAULT and not codes:
        codes.add("MODULE_FAULT")
    return frozenset(codes)
