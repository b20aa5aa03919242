"""Fleet events: what a CSMS node's fleet changed, as the coordinators replay it.

A CSMS node's :class:`PublishingFleet` is the ordinary :class:`FleetState` (the node's handlers
and its write-behind to PostgreSQL are unchanged) that also hands every replicated change to
an outbox as a :class:`FleetEvent`: the method's name and its keyword arguments. A
coordinator applies each event to its own ``FleetState`` with :func:`apply_event`, so both
run the same code on the same input; nothing is translated twice.

``msg_id`` (``node.boot.seq``) names an event for JetStream's duplicate window (a publish
retried after a lost acknowledgement is stored once).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from vpp_core.fleet.state import FleetState

__all__ = ["REPLICATED", "FleetEvent", "PublishingFleet", "apply_event"]

#: The ``FleetState`` methods whose calls are replicated (each takes ``station_id`` first and
#: keyword arguments only after it). Logs (commands, profiles, security events) are the
#: node's own, written to the database, not replicated.
REPLICATED = (
    "station_connected",
    "station_disconnected",
    "record_boot",
    "record_status",
    "record_charging_limit",
    "record_charging_needs",
    "record_allowed_energy_transfer",
    "record_priority_charging",
    "record_transaction_event",
    "record_meter_values",
)
_DATETIME_ARGS = frozenset({"now", "timestamp"})


class EventError(ValueError):
    """An event that cannot be decoded or applied (the message is logged and skipped)."""


@dataclass(frozen=True, slots=True)
class FleetEvent:
    op: str
    station_id: str
    kwargs: dict[str, Any]
    node: str
    msg_id: str

    def encode(self) -> bytes:
        return orjson.dumps(
            {"op": self.op, "station": self.station_id, "node": self.node, "args": self.kwargs},
            default=str,
        )

    @classmethod
    def decode(cls, data: bytes, msg_id: str) -> FleetEvent:
        try:
            body = orjson.loads(data)
            op, station, node, args = body["op"], body["station"], body["node"], body["args"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise EventError(f"undecodable fleet event {msg_id}: {exc}") from exc
        if op not in REPLICATED or not isinstance(args, dict) or not isinstance(station, str):
            raise EventError(f"fleet event {msg_id}: unknown operation {op!r}")
        for key in _DATETIME_ARGS & args.keys():
            if args[key] is not None:
                args[key] = datetime.fromisoformat(args[key])
        return cls(op, station, args, str(node), msg_id)


def apply_event(fleet: FleetState, event: FleetEvent) -> None:
    """Replay one event on a coordinator's fleet (raises what the fleet method raises)."""
    method: Callable[..., Any] = getattr(fleet, event.op)
    method(event.station_id, **event.kwargs)


class PublishingFleet(FleetState):
    """A CSMS node's fleet: every replicated change also goes to ``emit`` (the outbox)."""

    def __init__(self, *, node_id: str, emit: Callable[[FleetEvent], None], **kwargs: Any):
        super().__init__(**kwargs)
        self.node_id = node_id
        self.emit = emit
        boot = secrets.token_hex(4)
        self._ids = (f"{node_id}.{boot}.{n}" for n in itertools.count(1))

    def _emit(self, op: str, station_id: str, kwargs: dict[str, Any]) -> None:
        self.emit(FleetEvent(op, station_id, kwargs, self.node_id, next(self._ids)))


def _publishing(op: str) -> Callable[..., Any]:
    base: Callable[..., Any] = getattr(FleetState, op)

    def method(self: PublishingFleet, station_id: str, **kwargs: Any) -> Any:
        result = base(self, station_id, **kwargs)  # raises before emitting: nothing changed
        self._emit(op, station_id, kwargs)
        return result

    method.__name__ = op
    method.__doc__ = base.__doc__
    return method


for _op in REPLICATED:
    setattr(PublishingFleet, _op, _publishing(_op))
