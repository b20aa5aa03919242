"""The OCA JSON schemas shipped in the ``ocpp`` package, checked with ``jsonschema`` (the
reference validator, not our adapter's compiled one), and a recording transport wrapper that
checks every OCPP-J frame crossing a connection in either direction.

:class:`ValidatingConnection` wraps a websockets connection (``recv``/``send``/
``subprotocol``): a CALL is checked against ``<Action>Request``, a CALLRESULT against
``<Action>Response`` of the CALL it answers (sent in the other direction), a CALLERROR against
the RPC framework's shape. Problems are collected in :attr:`ValidatingConnection.violations`;
tests assert it stays empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import ocpp

__all__ = ["SCHEMA_DIRS", "SchemaBook", "ValidatingConnection", "WireFrame"]

SCHEMA_DIRS = {
    "ocpp2.1": Path(ocpp.__file__).parent / "v21" / "schemas",
    "ocpp2.0.1": Path(ocpp.__file__).parent / "v201" / "schemas",
}

_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"date-time without offset: {value}")
    return True


class SchemaBook:
    """Validators for one protocol version's schemas (loaded lazily)."""

    def __init__(self, subprotocol: str) -> None:
        self.directory = SCHEMA_DIRS[subprotocol]
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    def errors(self, name: str, payload: Any) -> list[str]:
        validator = self._validators.get(name)
        if validator is None:
            path = self.directory / f"{name}.json"
            if not path.exists():
                return [f"no schema {name}"]
            schema = json.loads(path.read_text(encoding="utf-8-sig"))
            validator = jsonschema.Draft6Validator(schema, format_checker=_FORMATS)
            self._validators[name] = validator
        return [
            f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(payload)
        ]


@dataclass(frozen=True)
class WireFrame:
    """One frame as it crossed the wire: ``direction`` "in" (received) or "out" (sent)."""

    direction: str
    message: Any

    @property
    def action(self) -> str | None:
        is_call = isinstance(self.message, list) and self.message and self.message[0] == 2
        return str(self.message[2]) if is_call else None

    @property
    def payload(self) -> Any:
        return self.message[3] if self.action else self.message[2]


class ValidatingConnection:
    """A websockets connection whose every frame is recorded and schema-checked."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.book = SchemaBook(ws.subprotocol or "ocpp2.1")
        self.frames: list[WireFrame] = []
        self.violations: list[str] = []
        self._calls: dict[tuple[str, str], str] = {}  # (direction of CALL, id) -> action

    @property
    def subprotocol(self) -> str | None:
        subprotocol: str | None = self.ws.subprotocol
        return subprotocol

    async def recv(self) -> str:
        text = await self.ws.recv()
        self._check("in", text)
        return str(text)

    async def send(self, text: str) -> None:
        self._check("out", text)
        await self.ws.send(text)

    async def close(self, *args: Any, **kwargs: Any) -> None:
        await self.ws.close(*args, **kwargs)

    def calls(self, action: str, direction: str = "in") -> list[Any]:
        """Payloads of the CALLs ``action`` received ("in") or sent ("out"), in order."""
        return [f.payload for f in self.frames if f.direction == direction and f.action == action]

    def _check(self, direction: str, text: Any) -> None:
        try:
            message = json.loads(text)
        except (TypeError, ValueError):
            self.violations.append(f"{direction}: not JSON: {str(text)[:200]}")
            return
        self.frames.append(WireFrame(direction, message))
        for problem in self._problems(direction, message):
            self.violations.append(f"{direction} {str(message)[:120]}: {problem}")

    def _problems(self, direction: str, message: Any) -> list[str]:
        if not isinstance(message, list) or not message or message[0] not in (2, 3, 4):
            return ["not an OCPP-J CALL/CALLRESULT/CALLERROR frame"]
        kind = message[0]
        if kind == 2:
            if len(message) != 4 or not isinstance(message[1], str) or len(message[1]) > 36:
                return ["bad CALL frame"]
            self._calls[(direction, message[1])] = message[2]
            return self.book.errors(f"{message[2]}Request", message[3])
        other = "out" if direction == "in" else "in"
        action = self._calls.pop((other, str(message[1])), None)
        if action is None:
            return [f"answer to no CALL {message[1]}"]
        if kind == 3:
            if len(message) != 3:
                return ["bad CALLRESULT frame"]
            return self.book.errors(f"{action}Response", message[2])
        shape_ok = (
            len(message) == 5
            and all(isinstance(x, str) for x in message[1:4])
            and isinstance(message[4], dict)
        )
        return [] if shape_ok else ["bad CALLERROR frame"]
