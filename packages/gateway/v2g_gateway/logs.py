"""Logging for the gateway's processes: journald when it is there, stderr otherwise.

Records may carry ``extra={"event_code": code}``; journald gets it as the ``EVENT_CODE``
field (``journalctl -u v2g-gateway EVENT_CODE=SENSOR_MISMATCH``), stderr shows it in brackets.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

__all__ = ["setup_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _EventCodeFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        code = getattr(record, "event_code", None)
        return f"{text} [{code}]" if code else text


def _journal_handler(identifier: str) -> logging.Handler | None:
    """systemd-python's handler when it is installed and we run under journald."""
    if not os.environ.get("JOURNAL_STREAM") and not os.environ.get("INVOCATION_ID"):
        return None
    try:
        journal: Any = importlib.import_module("systemd.journal")
    except ImportError:
        return None

    class _Handler(journal.JournalHandler):
        def emit(self, record: logging.LogRecord) -> None:
            code = getattr(record, "event_code", None)
            if code:
                record.EVENT_CODE = str(code)  # JournalHandler sends upper-case extras
            super().emit(record)

    handler: logging.Handler = _Handler(SYSLOG_IDENTIFIER=identifier)
    return handler


def setup_logging(level: str, *, identifier: str = "v2g-gateway") -> None:
    handler = _journal_handler(identifier)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_EventCodeFormatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
