"""Rows the fleet database refused, kept where an operator can read them.

The write-behind never retries a refused row for ever (it would hold back every later
change) and never drops it silently: each row the database refuses on its own (see
:mod:`vpp_core.fleet.salvage`) goes to the ``write_quarantine`` table with the table it was
meant for, the row as JSON text and the database's reason. If the database refuses that
too, the rows go to a JSON-lines file (``[fleet] quarantine_file``); if the file cannot be
written either, they are lost, and that is logged and counted. Read them with e.g.::

    sqlite3 /var/lib/vpp-core/fleet.db \\
        "SELECT quarantined_at, table_name, reason, row_json FROM write_quarantine"
    jq . /var/lib/vpp-core/write-quarantine.jsonl
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = ["QuarantineFile", "quarantine_row", "row_json"]

Row = dict[str, Any]


def row_json(row: Row) -> str:
    """The row as JSON text (datetimes ISO 8601, anything odd as its ``str``)."""
    try:
        return orjson.dumps(row, default=str).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: the very reason, often
        return orjson.dumps(_beyond_64_bits_as_text(row), default=str).decode()


def _beyond_64_bits_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _beyond_64_bits_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_beyond_64_bits_as_text(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 63:
        return str(value)
    return value


def quarantine_row(table_name: str, row: Row, reason: str, *, at: datetime) -> Row:
    """A ``write_quarantine`` row (every column, like the builders of ``rows``)."""
    return {
        "table_name": table_name,
        "row_json": row_json(row),
        "reason": reason,
        "quarantined_at": at,
    }


class QuarantineFile:
    """The fallback when the database refuses the quarantine rows too: JSON lines, appended
    and fsynced (one object per row: ``quarantined_at``, ``table_name``, ``reason``,
    ``row_json``, and ``database_error`` saying why the table was not used)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def append(self, rows: Sequence[Row], *, database_error: str) -> None:
        """Append ``rows``; raises ``OSError`` (or ``ValueError`` without a path)."""
        if self.path is None:
            raise ValueError("no [fleet] quarantine_file configured")
        lines = b"".join(
            orjson.dumps({**row, "database_error": database_error}) + b"\n" for row in rows
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(lines)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
