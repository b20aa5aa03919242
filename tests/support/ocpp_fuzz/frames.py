"""Seeded OCPP-J fuzz frames and what OCPP-J says must come back for each.

:class:`FrameFuzzer` (``random.Random(seed)``: the same seed, the same frames) draws from
valid seed CALLs of every action a CSMS receives and mutates them: payload leaves of the
wrong type, huge and negative integers, floats for integers, deep nesting, long and odd
strings, keys removed or added; and whole frames: wrong message type ids, unreadable or
duplicate message ids, CALLRESULTs / CALLERRORs / CALLRESULTERRORs for unknown ids, SENDs,
wrong element counts, non-arrays, truncated or invalid JSON, lone surrogates, binary frames,
invalid UTF-8 in a text frame and frames over the size limit.

:func:`expectation` states the OCPP-J 2.0.1/2.1 rules (part 4) for a frame, independently of
the adapter's decoder: a CALL whose id can be read gets an answer (CALLRESULT or CALLERROR)
with that id; an unreadable frame gets a CALLERROR (id ``"-1"`` when none was readable)
unless it is an answer or a SEND, which are never answered; a text frame that is not UTF-8
or a frame over the limit ends the connection at the websocket layer (1007 / 1009).
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["Expect", "FrameFuzzer", "FuzzFrame", "expectation", "seed_calls", "value_class"]

UNREADABLE_ID = "-1"
MALFORMED_CODES = frozenset({"RpcFrameworkError", "MessageTypeNotSupported", "ProtocolError"})


@dataclass(frozen=True)
class Expect:
    """What must come back: an answer with ``answer_id`` (None: nothing), a CALLERROR only
    (``must_be_error``), or the connection closed by the websocket layer (``closes``)."""

    answer_id: str | None
    must_be_error: bool = False
    closes: bool = False


@dataclass(frozen=True)
class FuzzFrame:
    data: str | bytes
    kind: str  # which generator made it (for the report)
    binary: bool = False  # a binary websocket frame (else text)
    expect: Expect = Expect(None)


def expectation(data: str | bytes, *, binary: bool, max_frame_bytes: int) -> Expect:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if len(raw) > max_frame_bytes:
        return Expect(None, closes=True)
    if not binary:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return Expect(None, closes=True)
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Expect(UNREADABLE_ID, must_be_error=True)
    if type(message) is not list or not message:
        return Expect(UNREADABLE_ID, must_be_error=True)
    type_id = message[0]
    message_id = message[1] if len(message) > 1 and type(message[1]) is str else None
    if type(type_id) is not int or type_id not in (2, 3, 4, 5, 6):
        return Expect(message_id or UNREADABLE_ID, must_be_error=True)
    if type_id != 2:
        return Expect(None)  # answers and SENDs are never answered
    if message_id is None:
        return Expect(UNREADABLE_ID, must_be_error=True)
    well_formed = len(message) == 4 and type(message[2]) is str and type(message[3]) is dict
    return Expect(message_id, must_be_error=not well_formed)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _meter(ts: str, wh: float) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": ts,
            "sampledValue": [
                {"value": -7000.0, "measurand": "Power.Active.Import"},
                {"value": wh, "measurand": "Energy.Active.Export.Register"},
                {"value": 61.5, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}},
            ],
        }
    ]


def seed_calls(tx_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Valid CALLs of every action a CSMS handles, and some it does not."""
    ts = _now()
    tx = {
        "eventType": "Updated",
        "timestamp": ts,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 3,
        "transactionInfo": {"transactionId": tx_id, "chargingState": "Charging"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": _meter(ts, 1200.0),
    }
    needs = {
        "requestedEnergyTransfer": "DC_BPT",
        "departureTime": "2030-01-01T18:00:00Z",
        "v2xChargingParameters": {"maxChargePower": 11000, "maxDischargePower": 9000},
    }
    profile = {
        "id": 7, "stackLevel": 10, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [{"id": 1, "chargingRateUnit": "W",
                              "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]}],
    }  # fmt: skip
    return [
        ("BootNotification", {"reason": "PowerUp",
                              "chargingStation": {"model": "Fuzz-1", "vendorName": "Fuzz"}}),
        ("Heartbeat", {}),
        ("StatusNotification", {"timestamp": ts, "connectorStatus": "Occupied", "evseId": 1,
                                "connectorId": 1}),
        ("TransactionEvent", {**tx, "eventType": "Started", "triggerReason": "CablePluggedIn"}),
        ("TransactionEvent", tx),
        ("MeterValues", {"evseId": 1, "meterValue": _meter(ts, 1300.0)}),
        ("NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": needs}),
        ("NotifyChargingLimit", {"evseId": 1, "chargingLimit": {"chargingLimitSource": "EMS"}}),
        ("ReportChargingProfiles", {"requestId": 1, "chargingLimitSource": "CSO", "evseId": 1,
                                    "chargingProfile": [profile], "tbc": False}),
        ("SecurityEventNotification", {"type": "SettingSystemTime", "timestamp": ts}),
        ("Authorize", {"idToken": {"idToken": "04A1B2C3", "type": "ISO14443"}}),
        ("DataTransfer", {"vendorId": "fuzz"}),
        ("NoSuchAction", {}),
    ]  # fmt: skip


_ODD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 2**31, -(2**31) - 1, 2**63, -(2**63), 2**64 - 1, 10**30,
    1.5, -0.0, 1e308, -1e308, 5e-324, "", "x" * 5000, "2026-13-45T99:99:99Z",
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-03-01T12:00:00",
    "\u0000", "é€😀", [], {},
    [1, [2, [3]]], {"a": {"b": {}}},
)  # fmt: skip


class FrameFuzzer:
    """Fuzz frames for one connection; ``next_id()`` ids are unique unless duplicated on
    purpose."""

    def __init__(self, seed: int, *, prefix: str, tx_id: str, max_frame_bytes: int) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.tx_id = tx_id
        self.max_frame_bytes = max_frame_bytes
        self._count = 0
        self._recent: list[str] = []
        #: payload mutations made, by class (what the report shows of them)
        self.mutations: Counter[str] = Counter()
        self._frame_makers: list[tuple[int, Callable[[], tuple[Any, str, bool]]]] = [
            (20, self._valid_call),
            (35, self._mutated_call),
            (8, self._wrong_type_id),
            (6, self._odd_message_id),
            (6, self._stray_answer),
            (3, self._send),
            (6, self._wrong_shape),
            (6, self._broken_json),
            (4, self._binary),
            (1, self._deeply_nested_frame),
        ]
        self._total_weight = sum(w for w, _ in self._frame_makers)

    def next_id(self) -> str:
        self._count += 1
        message_id = f"{self.prefix}-{self._count}"
        self._recent = [*self._recent[-20:], message_id]
        return message_id

    def frame(self) -> FuzzFrame:
        pick = self.rng.uniform(0, self._total_weight)
        maker = self._frame_makers[-1][1]
        for weight, candidate in self._frame_makers:
            pick -= weight
            if pick <= 0:
                maker = candidate
                break
        data, kind, binary = maker()
        expect = expectation(data, binary=binary, max_frame_bytes=self.max_frame_bytes)
        return FuzzFrame(data, kind, binary, expect)

    def killer(self) -> FuzzFrame:
        """A frame the websocket layer answers by closing: invalid UTF-8 text, or oversize."""
        if self.rng.random() < 0.5:
            data: bytes | str = (
                b'[2,"' + self.next_id().encode() + b'","Heartbeat",{"x":"\xff\xfe"}]'
            )
            kind = "invalid utf-8 text"
        else:
            big = {"vendorId": "v", "data": "x" * (self.max_frame_bytes + 10)}
            data, kind = json.dumps([2, self.next_id(), "DataTransfer", big]), "oversize"
        expect = expectation(data, binary=False, max_frame_bytes=self.max_frame_bytes)
        assert expect.closes
        return FuzzFrame(data, kind, False, expect)

    def callresult_for(self, action: str, message_id: str) -> str:
        """An answer (often mutated) to a CALL the CSMS sent this station."""
        payloads = {
            "GetChargingProfiles": {"status": "NoProfiles"},
            "SetChargingProfile": {"status": "Accepted"},
            "ClearChargingProfile": {"status": "Accepted"},
        }
        payload = copy.deepcopy(payloads.get(action, {"status": "Accepted"}))
        if self.rng.random() < 0.6:
            payload = self._mutate(payload)
        if self.rng.random() < 0.1:
            return json.dumps([4, message_id, "InternalError", "fuzz", {}])
        return json.dumps([3, message_id, payload])

    # -- frame makers: (data, kind, binary) ------------------------------------------------
    def _call(self, message_id: Any, action: Any, payload: Any) -> str:
        return json.dumps([2, message_id, action, payload])

    def _seed(self) -> tuple[str, dict[str, Any]]:
        action, payload = self.rng.choice(seed_calls(self.tx_id))
        return action, copy.deepcopy(payload)

    def _valid_call(self) -> tuple[Any, str, bool]:
        action, payload = self._seed()
        return self._call(self.next_id(), action, payload), "valid call", False

    def _mutated_call(self) -> tuple[Any, str, bool]:
        action, payload = self._seed()
        mutated = self._mutate(payload)
        for _ in range(self.rng.randrange(3)):
            mutated = self._mutate(mutated)
        message_id, kind = self.next_id(), "mutated payload"
        if len(self._recent) > 1 and self.rng.random() < 0.1:
            message_id, kind = self.rng.choice(self._recent[:-1]), "duplicate id"
        return self._call(message_id, action, mutated), kind, False

    def _wrong_type_id(self) -> tuple[Any, str, bool]:
        type_id = self.rng.choice([0, 1, 7, 99, -1, 2**63, 2.0, "2", None, True, [2], {}])
        action, payload = self._seed()
        return json.dumps([type_id, self.next_id(), action, payload]), "wrong type id", False

    def _odd_message_id(self) -> tuple[Any, str, bool]:
        message_id = self.rng.choice([None, 17, 2**63, [], {}, "", "x" * 300, "é€😀", True])
        action, payload = self._seed()
        return self._call(message_id, action, payload), "odd message id", False

    def _stray_answer(self) -> tuple[Any, str, bool]:
        message_id = (
            self.rng.choice([*self._recent, "never-sent", "-1", ""]) if self._recent else "x"
        )
        frame = self.rng.choice([
            [3, message_id, {"status": "Accepted"}],
            [4, message_id, "GenericError", "stray", {}],
            [5, message_id, "FormatViolation", "stray", {}],
            [3, message_id], [4, message_id], [3, message_id, [], 1],
        ])  # fmt: skip
        return json.dumps(frame), "answer for an unknown id", False

    def _send(self) -> tuple[Any, str, bool]:
        action, payload = self._seed()
        if self.rng.random() < 0.5:
            payload = self._mutate(payload)
        return json.dumps([6, self.next_id(), action, payload]), "SEND", False

    def _wrong_shape(self) -> tuple[Any, str, bool]:
        message_id = self.next_id()
        frame = self.rng.choice([
            [2, message_id], [2, message_id, "Heartbeat"], [2, message_id, "Heartbeat", {}, 1],
            [2, message_id, 5, {}], [2, message_id, "Heartbeat", []],
            [2, message_id, "Heartbeat", "payload"], [], {}, "text", 2, None, [[2]],
        ])  # fmt: skip
        return json.dumps(frame), "wrong frame shape", False

    def _broken_json(self) -> tuple[Any, str, bool]:
        action, payload = self._seed()
        text = self._call(self.next_id(), action, payload)
        choice = self.rng.randrange(4)
        if choice == 0:
            return text[: self.rng.randrange(1, len(text))], "truncated json", False
        if choice == 1:
            return text.replace('"', "'", 3), "invalid json", False
        if choice == 2:
            return text.replace("{}", '{"s": "\\ud800"}', 1) + "", "lone surrogate", False
        return "".join(self.rng.choice('[]{},:"0 2tfn') for _ in range(40)), "noise", False

    def _binary(self) -> tuple[Any, str, bool]:
        if self.rng.random() < 0.5:
            action, payload = self._seed()
            return self._call(self.next_id(), action, payload).encode(), "binary json", True
        return self.rng.randbytes(self.rng.randrange(1, 64)), "binary noise", True

    def _deeply_nested_frame(self) -> tuple[Any, str, bool]:
        depth = self.rng.choice([100, 600, 1100, 3000])
        nested = "[" * depth + "]" * depth
        text = json.dumps([2, self.next_id(), "DataTransfer", {"vendorId": "v"}])
        return text[:-2] + ', "data": ' + nested + "}]", f"nested {depth}", False

    # -- payload mutations -----------------------------------------------------------------
    def _mutate(self, payload: Any) -> Any:
        paths = [p for p in _paths(payload) if len(p) < 40]  # one deep nest per payload
        if not paths:
            return self._odd()
        path = self.rng.choice(paths)
        parent, key = _locate(payload, path)
        if parent is None:
            return self._odd()
        operation = self.rng.randrange(5)
        if operation == 0 and isinstance(parent, dict):
            del parent[key]
            self.mutations["key removed"] += 1
        elif operation == 1 and isinstance(parent, dict):
            parent[self.rng.choice(["extra", "customData", "évse", ""])] = self._odd()
            self.mutations["key added"] += 1
        elif operation == 2:
            depth = self.rng.choice([3, 40, 300])
            parent[key] = _nested(depth, self._odd())
            self.mutations[f"value nested {depth} deep"] += 1
        else:
            parent[key] = self._odd()
        return payload

    def _odd(self) -> Any:
        value = copy.deepcopy(self.rng.choice(_ODD_VALUES))
        self.mutations[value_class(value)] += 1
        return value


def value_class(value: Any) -> str:
    """What kind of odd value a mutation put in (for the report)."""
    if type(value) is int:
        if not -(2**31) <= value < 2**31:
            return "integer outside int32"
        return "negative integer" if value < 0 else "small integer"
    if isinstance(value, bool) or value is None:
        return "boolean or null"
    return {float: "float", str: "string", list: "array", dict: "object"}[type(value)]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, (*prefix, index)))
    return out


def _locate(root: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    return (parent, path[-1]) if path else (None, None)


def _nested(depth: int, leaf: Any) -> Any:
    node = leaf
    for n in range(depth):
        node = {"vendorId": "v", "n": node} if n % 2 else [node]
    return node
