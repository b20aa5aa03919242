"""The SECC process <-> gateway protocol: JSON lines over a Unix stream socket, version 1.

Each line is one object ``{"v": 1, "type": <kind>, ...fields}``; the fields are exactly those of
the message's dataclass (unknown or missing fields are a :class:`WireError`, never guessed).
The gateway listens, the SECC process connects. Sign convention as everywhere: watts, positive
into the EV (charging), negative out of it (discharge); limits are magnitudes (>= 0).

SECC -> gateway: :class:`SessionState` (every state of the ISO 15118 state machine),
:class:`EvParams` (the EV's declared limits and needs, once they are all known),
:class:`EvPresent` (each charge-loop request), :class:`EvStopRequest` (the EV pauses or ends),
:class:`SessionEnded`. Gateway -> SECC: :class:`EvseOffer` (each station tick).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "VERSION",
    "EvParams",
    "EvPresent",
    "EvStopRequest",
    "EvseOffer",
    "Message",
    "SessionEnded",
    "SessionState",
    "WireError",
    "decode",
    "encode",
]

VERSION = 1


class WireError(ValueError):
    """A line that is not a valid message of this protocol version."""


@dataclass(frozen=True, slots=True)
class SessionState:
    """The SECC entered ``state`` (e.g. ``SessionSetup``, ``DCChargeLoop``)."""

    kind: ClassVar[str] = "state"
    state: str
    protocol: str | None


@dataclass(frozen=True, slots=True)
class EvParams:
    """What the EV declared: ChargeParameterDiscovery (limits) and, for -20, ScheduleExchange
    (energies, SoCs, departure). ``protocol`` is the negotiated one (``ISO_15118_20_DC``,
    ``ISO_15118_2``, ``DIN_SPEC_70121``...), ``service`` the -20 energy service (``DC_BPT``,
    ``AC_BPT``, ``DC``, ``AC``; for -2/DIN the energy transfer mode). ``departure_in_s`` counts
    from when the message was sent."""

    kind: ClassVar[str] = "ev_params"
    evcc_id: str
    protocol: str
    service: str
    control_mode: str | None
    max_charge_w: float
    min_charge_w: float
    max_discharge_w: float
    min_discharge_w: float
    battery_capacity_wh: float | None
    target_energy_wh: float | None
    max_energy_wh: float | None
    min_energy_wh: float | None
    max_v2x_energy_wh: float | None
    min_v2x_energy_wh: float | None
    target_soc_pct: float | None
    min_soc_pct: float | None
    present_soc_pct: float | None
    departure_in_s: float | None


@dataclass(frozen=True, slots=True)
class EvPresent:
    """The EV's present values from its last charge-loop request (None: not sent)."""

    kind: ClassVar[str] = "ev_present"
    soc_pct: float | None
    power_w: float | None
    voltage_v: float | None


@dataclass(frozen=True, slots=True)
class EvStopRequest:
    """The EV asked to ``pause`` (Standby / PowerDelivery stop) or ``terminate``."""

    kind: ClassVar[str] = "ev_stop"
    action: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session is over; ``code`` is a shared event code (``EV_COMM_TIMEOUT``) or None."""

    kind: ClassVar[str] = "session_ended"
    state: str
    reason: str
    code: str | None


@dataclass(frozen=True, slots=True)
class EvseOffer:
    """What the SECC offers the EV next: ``target_w`` is the setpoint in force (signed),
    bounded by ``max_charge_w`` / ``max_discharge_w`` (the control law's and the CSMS's limits
    for this EV); ``present_w`` what the power stage measures; ``stop`` no energy transfer
    (fail-safe, remote stop, unavailable, outside the charge loop); ``emergency`` a trip (the
    control loop opened the contactor at once): the SECC tells the EV to terminate."""

    kind: ClassVar[str] = "evse_offer"
    target_w: float
    max_charge_w: float
    max_discharge_w: float
    present_w: float
    stop: bool
    emergency: bool = False


Message = SessionState | EvParams | EvPresent | EvStopRequest | SessionEnded | EvseOffer

_KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (SessionState, EvParams, EvPresent, EvStopRequest, SessionEnded, EvseOffer)
}


def encode(message: Message) -> bytes:
    """One line (``\\n``-terminated UTF-8 JSON)."""
    body = {"v": VERSION, "type": message.kind, **dataclasses.asdict(message)}
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> Message:
    """The message on ``line``; :class:`WireError` naming what is wrong otherwise."""
    try:
        body = json.loads(line)
    except ValueError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WireError("not a JSON object")
    if body.pop("v", None) != VERSION:
        raise WireError(f"unsupported protocol version (want {VERSION})")
    cls = _KINDS.get(body.pop("type", None))
    if cls is None:
        raise WireError("unknown message type")
    names = {f.name for f in dataclasses.fields(cls)}
    if set(body) != names:
        raise WireError(f"{cls.kind}: fields {sorted(set(body) ^ names)} missing or unknown")
    message: Message = cls(**body)
    return message
