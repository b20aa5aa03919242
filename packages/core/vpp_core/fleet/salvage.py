"""Salvaging a batch the database refused: split it until the refused rows are isolated.

A write-behind batch is one transaction. When the database is reachable and still refuses it,
the fault is in the rows (a value a column cannot hold, rows of two shapes in one
``executemany``), not in the database, and retrying the same batch would fail for ever and
hold back every later change. So the batch is bisected: each half is written in its own
transaction, a half that fails is split again, and a single row that fails alone is
*refused* (the caller quarantines it with its reason). Good rows land; k refused rows among
n cost about 2·k·log2(n) extra transactions.

Whether a failure is the database's (transient: retry everything later) or the rows' is
decided by ``transient(exc)`` (an error class, then a probe of the database). When the
database becomes unreachable half-way, what was not written yet is handed back as
``unwritten`` and nothing is refused for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Item", "Refused", "Salvage", "salvage"]

#: One row and where it goes: ``(WriteBatch field, row)``.
Item = tuple[str, dict[str, Any]]
#: The longest reason kept (driver errors quote the statement and its parameters).
MAX_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Refused:
    """A row the database refused on its own, and why."""

    item: Item
    reason: str


@dataclass
class Salvage:
    written: int = 0
    refused: list[Refused] = field(default_factory=list)
    #: Items not tried because the database became unreachable (retry them later).
    unwritten: list[Item] = field(default_factory=list)


def reason_of(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


async def salvage(
    items: Sequence[Item],
    error: BaseException,
    *,
    write: Callable[[Sequence[Item]], Awaitable[None]],
    transient: Callable[[BaseException], Awaitable[bool]],
) -> Salvage:
    """Write what can be written of ``items``, which failed together with ``error``."""
    result = Salvage()
    await _split(items, error, result, write, transient)
    return result


async def _split(
    items: Sequence[Item],
    error: BaseException,
    result: Salvage,
    write: Callable[[Sequence[Item]], Awaitable[None]],
    transient: Callable[[BaseException], Awaitable[bool]],
) -> None:
    if len(items) == 1:
        result.refused.append(Refused(items[0], reason_of(error)))
        return
    middle = len(items) // 2
    for half in (items[:middle], items[middle:]):
        if result.unwritten:  # the database went away: keep the rest for the retry
            result.unwritten.extend(half)
            continue
        try:
            await write(half)
        except Exception as exc:
            if await transient(exc):
                result.unwritten.extend(half)
            else:
                await _split(half, exc, result, write, transient)
        else:
            result.written += len(half)
