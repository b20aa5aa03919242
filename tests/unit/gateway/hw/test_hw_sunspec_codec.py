"""SunSpec point codec: exact registers both ways, scale factors, not-implemented values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from v2g_gateway.hw.power_module.codec import (
    decode_model,
    decode_point,
    encode_point,
    fault_codes,
    scale,
    unscale,
)
from v2g_gateway.hw.power_module.register_map import PointSpec, standard_register_map


def _p(ptype: str, size: int = 1) -> PointSpec:
    return PointSpec("X", 0, ptype, size)


CASES = [
    # (type, size, raw value, exact registers)
    ("int16", 1, -7000, [0xE4A8]),
    ("int16", 1, 32767, [0x7FFF]),
    ("uint16", 1, 11000, [0x2AF8]),
    ("sunssf", 1, -2, [0xFFFE]),
    ("int32", 2, -7000, [0xFFFF, 0xE4A8]),
    ("int32", 2, 70000, [0x0001, 0x1170]),
    ("uint32", 2, 5000, [0x0000, 0x1388]),
    ("bitfield32", 2, (1 << 7) | 1, [0x0000, 0x0081]),
    ("uint64", 4, 123_456_789_012, [0x0000, 0x001C, 0xBE99, 0x1A14]),
    ("enum16", 1, 6, [0x0006]),
    ("string", 4, "SunS", [0x5375, 0x6E53, 0, 0]),
]


@pytest.mark.parametrize(("ptype", "size", "value", "words"), CASES)
def test_point_encodes_to_exact_registers_and_back(
    ptype: str, size: int, value: int | str, words: list[int]
) -> None:
    point = _p(ptype, size)
    assert encode_point(value, point) == words
    assert decode_point(words, point) == value


@pytest.mark.parametrize(
    ("ptype", "size", "words"),
    [
        ("int16", 1, [0x8000]),
        ("uint16", 1, [0xFFFF]),
        ("sunssf", 1, [0x8000]),
        ("int32", 2, [0x8000, 0x0000]),
        ("uint32", 2, [0xFFFF, 0xFFFF]),
        ("uint64", 4, [0xFFFF] * 4),
        ("string", 2, [0, 0]),
    ],
)
def test_not_implemented_values_decode_to_none(ptype: str, size: int, words: list[int]) -> None:
    assert decode_point(words, _p(ptype, size)) is None
    assert encode_point(None, _p(ptype, size)) == ([0, 0] if ptype == "string" else words)


def test_out_of_range_raw_value_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode_point(40000, _p("int16"))
    with pytest.raises(ValueError, match="registers"):
        decode_point([1, 2], _p("int16"))


@pytest.mark.parametrize(
    ("raw", "sf", "value"),
    [(-7000, 0, -7000.0), (-700, 1, -7000.0), (2301, -1, 230.1), (5002, -2, 50.02), (7, 3, 7000.0)],
)
def test_scale_factor_applies_power_of_ten(raw: int, sf: int, value: float) -> None:
    assert scale(raw, sf) == value
    assert unscale(value, sf) == raw


@given(st.integers(-32767, 32767), st.integers(-4, 4))
def test_scale_unscale_round_trip(raw: int, sf: int) -> None:
    assert unscale(scale(raw, sf), sf) == raw


def test_decode_model_scales_points_with_their_scale_factor() -> None:
    spec = standard_register_map().model(701)
    words = [0] * 160
    words[10] = encode_point(-700, spec.point("W"))[0]
    words[116] = encode_point(1, spec.point("W_SF"))[0]
    words[17:19] = encode_point(500_123, spec.point("Hz"))
    words[115] = encode_point(-4, spec.point("Hz_SF"))[0]
    values = decode_model(words, spec)
    assert values["W"] == -7000.0
    assert values["Hz"] == 50.0123


@pytest.mark.parametrize(
    ("inv_st", "alrm", "codes"),
    [
        (3, 0, set()),
        (6, 1 << 0, {"GROUND_FAULT"}),
        (6, 1 << 7, {"OVER_TEMP"}),
        (6, (1 << 1) | (1 << 10), {"DC_OVER_VOLTAGE", "AC_OVER_VOLTAGE"}),
        (6, 1 << 11, {"AC_UNDER_VOLTAGE"}),
        (6, 1 << 8, {"MODULE_FAULT"}),  # over-frequency has no code of its own
        (6, 0, {"MODULE_FAULT"}),
        (None, None, set()),
    ],
)
def test_fault_codes_are_stable(inv_st: int | None, alrm: int | None, codes: set[str]) -> None:
    assert fault_codes(inv_st, alrm) == frozenset(codes)
