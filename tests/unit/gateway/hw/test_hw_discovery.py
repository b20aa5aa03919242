"""SunSpec discovery over a register dictionary: marker search, chain walk, malformed chains."""

from __future__ import annotations

import pytest

from v2g_gateway.hw.errors import IllegalAddressError, ModelMissingError
from v2g_gateway.hw.power_module.discovery import discover_models


def _device(base: int, models: list[tuple[int, int]], *, end: bool = True) -> dict[int, int]:
    regs = {base: 0x5375, base + 1: 0x6E53}
    address = base + 2
    for model_id, length in models:
        regs[address], regs[address + 1] = model_id, length
        for i in range(length):
            regs[address + 2 + i] = 0
        address += 2 + length
    if end:
        regs[address], regs[address + 1] = 0xFFFF, 0
    return regs


def _reader(regs: dict[int, int]):  # type: ignore[no-untyped-def]
    async def read(address: int, count: int) -> list[int]:
        if any(a not in regs for a in range(address, address + count)):
            raise IllegalAddressError("no such register", exception_code=2)
        return [regs[a] for a in range(address, address + count)]

    return read


async def test_walks_chain_from_40000() -> None:
    regs = _device(40000, [(1, 66), (701, 153), (704, 65)])
    chain = await discover_models(_reader(regs), (40000, 0, 50000))
    assert chain.addresses == {1: 40002, 701: 40070, 704: 40225}
    assert chain.lengths[701] == 153


async def test_finds_marker_at_alternative_base() -> None:
    regs = _device(50000, [(1, 66), (713, 7)])
    chain = await discover_models(_reader(regs), (40000, 0, 50000))
    assert chain.base_address == 50000
    assert chain.address(713) == 50070


async def test_missing_marker_and_missing_model_are_typed() -> None:
    with pytest.raises(ModelMissingError, match="no SunSpec marker"):
        await discover_models(_reader({0: 1, 1: 2}), (40000, 0))
    chain = await discover_models(_reader(_device(0, [(1, 66)])), (0,))
    with pytest.raises(ModelMissingError, match="704"):
        chain.address(704)


async def test_chain_without_end_marker_is_an_error_not_a_hang() -> None:
    regs = _device(40000, [(1, 0)] * 120, end=False)
    with pytest.raises((ModelMissingError, IllegalAddressError)):
        await discover_models(_reader(regs), (40000,))
