"""No credential in any log record, at any level.

websockets logs every handshake header at DEBUG (``< Authorization: Basic Q1MtMDAw...``), so
``vpp-core --log-level DEBUG`` wrote each security-profile-2 station's password (base64 is
an encoding, not a secret) and a station at DEBUG wrote its own. :class:`CredentialFilter`
rewrites a record before any handler sees it:

* a header logged as ``("%s: %s", name, value)`` (websockets' form) whose name is
  ``Authorization``, ``Proxy-Authorization``, ``Cookie`` or ``Set-Cookie`` keeps its name
  and loses its value;
* anywhere else in the message, or in the formatted traceback, the credential after
  ``Basic`` / ``Bearer`` / ``Digest`` is replaced.

:func:`redact_credentials` attaches it to loggers (idempotent): a logger's filters run for
every record logged through it, whatever handlers the process configured. The CSMS, the
station's ``connect_to_csms`` and each entry point's root handlers use it.
"""

from __future__ import annotations

import logging
import re

__all__ = ["REDACTED", "CredentialFilter", "redact_credentials", "redact_text"]

REDACTED = "[redacted]"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SCHEME_CREDENTIAL = re.compile(r"\b(Basic|Bearer|Digest)(\s+)[^\s,;'\"]+", re.IGNORECASE)


def redact_text(text: str) -> str:
    """``text`` with the credential after each auth scheme replaced."""
    return _SCHEME_CREDENTIAL.sub(rf"\1\2{REDACTED}", text)


class CredentialFilter(logging.Filter):
    """Rewrites records so they carry no credential (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and args[0].lower() in _SECRET_HEADERS
        ):
            record.args = (args[0], REDACTED)
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


_FILTER = CredentialFilter()


def redact_credentials(*targets: logging.Logger | logging.Handler) -> None:
    """Attach the credential filter to loggers or handlers (once each)."""
    for target in targets:
        if not any(isinstance(f, CredentialFilter) for f in target.filters):
            target.addFilter(_FILTER)
