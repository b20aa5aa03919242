"""SunSpec discovery: find the "SunS" marker, then walk the model chain to the end marker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from v2g_gateway.hw.errors import IllegalAddressError, ModelMissingError
from v2g_gateway.hw.power_module.codec import SUNS_MARKER

__all__ = ["END_MODEL_ID", "ModelChain", "discover_models"]

END_MODEL_ID = 0xFFFF
#: A chain longer than this is a corrupt map, not a device.
_MAX_MODELS = 100

ReadRegisters = Callable[[int, int], Awaitable[list[int]]]


@dataclass(frozen=True, slots=True)
class ModelChain:
    """Where each model starts (address of its ID register) and its length L."""

    base_address: int
    addresses: dict[int, int]
    lengths: dict[int, int]

    def address(self, model_id: int) -> int:
        try:
            return self.addresses[model_id]
        except KeyError:
            raise ModelMissingError(
                f"SunSpec model {model_id} not on the device (found {sorted(self.addresses)})"
            ) from None


async def _has_marker(read: ReadRegisters, base: int) -> bool:
    try:
        return tuple(await read(base, 2)) == SUNS_MARKER
    except IllegalAddressError:
        return False


async def _walk(read: ReadRegisters, base: int) -> ModelChain:
    addresses: dict[int, int] = {}
    lengths: dict[int, int] = {}
    address = base + 2
    for _ in range(_MAX_MODELS):
        model_id, length = await read(address, 2)
        if model_id == END_MODEL_ID:
            return ModelChain(base, addresses, lengths)
        addresses.setdefault(model_id, address)
        lengths.setdefault(model_id, length)
        address += 2 + length
    raise ModelMissingError(f"SunSpec chain at {base} has no end marker after {_MAX_MODELS} models")


async def discover_models(read: ReadRegisters, base_addresses: Sequence[int]) -> ModelChain:
    """Try each base address for the marker and walk the chain found there."""
    for base in base_addresses:
        if await _has_marker(read, base):
            return await _walk(read, base)
    raise ModelMissingError(f"no SunSpec marker at any of {list(base_addresses)}")
