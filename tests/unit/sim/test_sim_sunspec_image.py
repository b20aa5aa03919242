"""The simulator's SunSpec image: layout, rendering from the model, writes into the model."""

from __future__ import annotations

import pytest

from v2g_gateway.hw.power_module.codec import decode_model, encode_point
from v2g_gateway.hw.power_module.register_map import standard_register_map
from v2g_sim.ev import EvSpec
from v2g_sim.module import PowerModuleModel
from v2g_sim.sunspec_image import ScaleFactors, SunSpecImage, WriteRejected

MAP = standard_register_map()


def _image(sf: ScaleFactors | None = None) -> SunSpecImage:
    model = PowerModuleModel()
    model.plug_in(EvSpec(soc_pct=42.0))
    return SunSpecImage(model, sf=sf or ScaleFactors())


def _model_values(image: SunSpecImage, model_id: int) -> dict[str, float | int | str | None]:
    words = image.render()
    start = image.addresses[model_id] - image.base_address
    return decode_model(words[start : start + 2 + MAP.model(model_id).length], MAP.model(model_id))


def test_layout_marker_chain_and_end() -> None:
    image = _image()
    words = image.render()
    assert words[:2] == [0x5375, 0x6E53]
    assert image.addresses == {1: 40002, 701: 40070, 702: 40225, 703: 40277, 704: 40296, 713: 40363}
    assert words[-2:] == [0xFFFF, 0]
    assert words[image.addresses[704] - 40000 : image.addresses[704] - 40000 + 2] == [704, 65]


def test_measured_power_is_published_in_der_sign() -> None:
    image = _image(ScaleFactors(w_sf=1))
    image.model.power_w = -7004.0  # discharging: injection into the grid, positive in SunSpec
    values = _model_values(image, 701)
    assert values["W"] == 7000.0
    assert values["W_SF"] == 1


def test_soc_not_implemented_without_ev() -> None:
    image = _image()
    assert _model_values(image, 713)["SoC"] == 42.0
    image.model.plug_out()
    assert _model_values(image, 713)["SoC"] is None


def _wset_words(image: SunSpecImage, raw_w: int) -> tuple[int, list[int]]:
    spec = MAP.model(704)
    words = [1, 1, *encode_point(raw_w, spec.point("WSet"))]
    return image.addresses[704] + 22, words


def test_wset_write_commands_the_model_with_scale_and_sign() -> None:
    image = _image(ScaleFactors(wset_sf=1))
    address, words = _wset_words(image, 700)  # 7000 W injection = discharge
    image.apply_write(address, words)
    assert image.model.setpoint_w == -7000.0


def test_wset_disabled_means_zero() -> None:
    image = _image()
    address, words = _wset_words(image, 5000)
    words[0] = 0  # WSetEna = disabled
    image.apply_write(address, words)
    assert image.model.setpoint_w == 0.0


def test_revert_registers_program_the_module_timer() -> None:
    image = _image()
    base = image.addresses[704]
    image.apply_write(base + 30, [1, 0, 15])  # WSetEnaRvrt=1, WSetRvrtTms=15 s
    assert image.model.revert.enabled
    assert image.model.revert.timeout_s == 15.0
    assert _model_values(image, 704)["WSetRvrtRem"] == 15


def test_es_write_stops_energizing() -> None:
    image = _image()
    image.apply_write(image.addresses[703] + 2, [0])
    assert not image.model.energized


@pytest.mark.parametrize(("offset", "count"), [(10, 1), (24, 1), (0, 2)])
def test_read_only_or_partial_writes_are_rejected_and_change_nothing(
    offset: int, count: int
) -> None:
    image = _image()
    model_id = 701 if offset == 10 else 704
    with pytest.raises(WriteRejected):
        image.apply_write(image.addresses[model_id] + offset, [0] * count)
    assert image.model.setpoint_w == 0.0
