"""What the gateway knows of the EV's ISO 15118 session, from the SECC's wire messages.

Pure state (no I/O, time passed in): :meth:`SessionView.apply` takes each message and logs
the state machine; the EV link reads needs, SoC and whether energy may flow from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from v2g_ev15118.mapping import charge_only_reason
from v2g_ev15118.wire import (
    EvParams,
    EvPresent,
    EvStopRequest,
    Message,
    SessionEnded,
    SessionState,
)

__all__ = ["CHARGE_LOOP_STATES", "SessionView"]

log = logging.getLogger("v2g_ev15118.session")

#: The states in which energy flows: -20 DC/AC charge loop, -2 and DIN current demand (DC)
#: and charging status (AC).
CHARGE_LOOP_STATES = frozenset({"DCChargeLoop", "ACChargeLoop", "CurrentDemand", "ChargingStatus"})


@dataclass(slots=True)
class SessionView:
    """The present session: its state, the EV's parameters and present values; ``code`` is
    the event code that ended the last session (kept until the next one starts)."""

    state: str | None = None
    protocol: str | None = None
    params: EvParams | None = None
    present: EvPresent | None = None
    code: str | None = None
    paused: bool = False
    discharged: bool = False
    #: Told of each event code a session ends with (the uplink's report, via the daemon).
    on_event: Callable[[str, dict[str, str]], None] | None = field(default=None, repr=False)

    def apply(self, message: Message) -> None:
        if isinstance(message, SessionState):
            self._enter(message)
        elif isinstance(message, EvParams):
            self._declared(message)
        elif isinstance(message, EvPresent):
            self._present(message)
        elif isinstance(message, EvStopRequest):
            log.info("EV requests %s", message.action)
            self.paused = message.action == "pause"
        elif isinstance(message, SessionEnded):
            self._ended(message)

    def hold(self) -> str | None:
        """Why no energy may flow (EV link contract: ``EvSession.hold``)."""
        if self.code is not None:
            return self.code
        if self.state not in CHARGE_LOOP_STATES:
            return f"ISO 15118 session in {self.state or 'no session'}"
        return "EV paused" if self.paused else None

    def disconnected(self) -> None:
        """The SECC process went away: nothing it said holds any more."""
        self.state, self.params, self.present, self.paused = None, None, None, False

    def _enter(self, message: SessionState) -> None:
        if message.state == "SessionSetup" and self.state != "SessionSetup":
            self.code, self.params, self.present, self.paused = None, None, None, False
            self.discharged = False
        if message.state != self.state:
            log.info("ISO 15118 state %s (%s)", message.state, message.protocol)
        self.state, self.protocol = message.state, message.protocol

    def _present(self, present: EvPresent) -> None:
        self.present = present
        if not self.discharged and (present.power_w or 0.0) < 0:
            self.discharged = True
            log.info("first discharge current: %.0f W at %s V", present.power_w, present.voltage_v)

    def _declared(self, params: EvParams) -> None:
        self.params = params
        reason = charge_only_reason(params)
        log.info(
            "EV %s declared %s %s %s: charge %.0f W, discharge %.0f W, SoC %s %%",
            params.evcc_id,
            params.protocol,
            params.service,
            params.control_mode,
            params.max_charge_w,
            params.max_discharge_w,
            params.present_soc_pct,
        )
        if reason is not None:
            log.warning("charge-only session (no discharge): %s", reason)

    def _ended(self, message: SessionEnded) -> None:
        self.state, self.paused = None, False
        if message.code is not None:
            self.code = message.code
            log.warning("%s: session ended in %s (%s)", message.code, message.state, message.reason)
            if self.on_event is not None:
                self.on_event(message.code, {"state": message.state, "reason": message.reason})
        else:
            log.info("session ended in %s (%s)", message.state, message.reason)
