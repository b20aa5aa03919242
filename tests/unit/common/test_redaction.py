"""The credential filter: header records, credentials inside messages and tracebacks."""

from __future__ import annotations

import logging

import pytest

from v2g_common.redaction import CredentialFilter, redact_credentials

SECRET = "Q1MtMDAwMTpzM2NyZXQtcGFzc3dvcmQ="


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger("test.redaction")
    redact_credentials(log)
    redact_credentials(log)  # idempotent
    assert sum(isinstance(f, CredentialFilter) for f in log.filters) == 1
    return log


@pytest.mark.parametrize(
    ("message", "args", "expected"),
    [
        ("< %s: %s", ("Authorization", f"Basic {SECRET}"), "< Authorization: [redacted]"),
        ("> %s: %s", ("authorization", f"Bearer {SECRET}"), "> authorization: [redacted]"),
        ("> %s: %s", ("Cookie", "session=abc"), "> Cookie: [redacted]"),
        ("< %s: %s", ("Host", "localhost:8443"), "< Host: localhost:8443"),
        ("header was %r", (f"Basic {SECRET}",), "header was 'Basic [redacted]'"),
        ("refused Bearer %s", (SECRET,), "refused Bearer [redacted]"),
    ],
)
def test_records_lose_their_credentials(
    logger: logging.Logger,
    caplog: pytest.LogCaptureFixture,
    message: str,
    args: tuple[str, ...],
    expected: str,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="test.redaction"):
        logger.debug(message, *args)
    [record] = caplog.records
    assert record.getMessage() == expected


def test_tracebacks_lose_their_credentials(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="test.redaction"):
        try:
            raise ValueError(f"bad header 'Basic {SECRET}'")
        except ValueError:
            logger.exception("handshake failed")
    [record] = caplog.records
    assert SECRET not in caplog.text
    assert "Basic [redacted]" in (record.exc_text or "")
