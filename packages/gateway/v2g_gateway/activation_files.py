"""The gateway's answer to an activation-file request (MQTT, issue 19): the named activation
file of ``[frequency_log] directory`` (default: the latest), or the rows of a window of it,
in parts for the broker's packet limit; a request it cannot serve gets one ``rejected`` part
naming why. Wire shapes and topics: :mod:`v2g_common.telemetry.activation_files`."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from v2g_common.telemetry.activation_files import (
    FileRequest,
    file_parts,
    parse_request,
    rejection,
    request_id_of,
)
from v2g_common.telemetry.errors import PayloadError

__all__ = ["ActivationFiles"]

log = logging.getLogger(__name__)


class _Refused(Exception):
    """A request this gateway cannot serve (the reason goes back to the requester)."""


class ActivationFiles:
    """Answers requests for the activation files in ``directory``."""

    def __init__(self, directory: Path, *, site: str) -> None:
        self.directory = directory
        self.site = site

    def answer(self, payload: bytes) -> list[bytes]:
        """The messages that answer ``payload`` (never raises for a bad request)."""
        try:
            request = parse_request(payload)
        except PayloadError as exc:
            log.warning("activation file request refused: %s", exc)
            return [rejection(request_id_of(payload), self.site, f"bad request: {exc.detail}")]
        try:
            name, header, rows = self._read(request)
        except _Refused as exc:
            log.warning("activation file request %s refused: %s", request.request_id, exc)
            return [rejection(request.request_id, self.site, str(exc))]
        window = _window(rows, request.from_s, request.to_s)
        log.info("activation file %s: %d rows to %s", name, len(window), request.request_id)
        return file_parts(request.request_id, self.site, name, header, window)

    def _read(self, request: FileRequest) -> tuple[str, str, list[str]]:
        path = self._path(request.file)
        try:
            header, *rows = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise _Refused(f"no activation file {path.name}") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise _Refused(f"activation file {path.name} cannot be read: {exc}") from None
        return path.name, header, rows

    def _path(self, name: str | None) -> Path:
        if name is not None:
            return self.directory / name  # the name was checked: no directory in it
        try:
            files = sorted(self.directory.glob("activation-*.csv"))
        except OSError as exc:
            raise _Refused(f"activation files cannot be listed: {exc}") from None
        if not files:
            raise _Refused("no activation recorded")
        return files[-1]


def _window(rows: Sequence[str], from_s: float | None, to_s: float | None) -> list[str]:
    """The rows whose ``t_s`` (first column) lies in [from_s, to_s]."""
    low = -math.inf if from_s is None else from_s
    high = math.inf if to_s is None else to_s
    if (low, high) == (-math.inf, math.inf):
        return list(rows)
    return [row for row in rows if low <= _t_s(row) <= high]


def _t_s(row: str) -> float:
    try:
        return float(row.split(",", 1)[0])
    except ValueError:
        return math.nan  # a torn last line of a file still being written: never in a window
