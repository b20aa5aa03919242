"""The gateway's ``[ev_link] kind = "iso15118"``: an ``EvSession`` (``v2g_gateway.control.ports``)
that supervises the SECC process (``v2g_ev15118.secc``, in its own virtualenv) and talks to it
over the wire protocol on a Unix socket the gateway listens on.

Registered as the entry point ``ev_link.iso15118`` (group ``v2g_gateway.adapters``); runs in
the gateway's virtualenv and imports nothing of iso15118.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from v2g_ev15118.mapping import needs_fields, soc_pct
from v2g_ev15118.process import SupervisedProcess
from v2g_ev15118.session import SessionView
from v2g_ev15118.wire import EvseOffer, WireError, decode, encode
from v2g_gateway.control.ports import EvChargingNeeds, EvseTargets

if TYPE_CHECKING:
    from v2g_gateway.adapters import EvLinkFactory
    from v2g_gateway.config import GatewayConfig
    from v2g_gateway.devices import Iso15118Section

__all__ = ["Iso15118Link", "SeccUnavailable", "open_ev_link", "secc_argv"]

log = logging.getLogger("v2g_ev15118.link")

#: Offers are dropped rather than queued beyond this (a stalled SECC must not grow memory).
_MAX_BUFFERED_BYTES = 64 * 1024


class SeccUnavailable(ConnectionError):
    """The SECC process is not connected (starting, restarting)."""


def secc_argv(section: Iso15118Section, *, rated_w: float) -> list[str]:
    """The SECC process's command line."""
    argv = [
        str(section.python), "-m", "v2g_ev15118.secc",
        "--socket", str(section.socket),
        "--interface", section.interface,
        "--evse-id", section.evse_id,
        "--protocols", ",".join(section.protocols),
        "--rated-w", str(rated_w),
        "--sequence-timeout-s", str(section.sequence_timeout_s),
    ]  # fmt: skip
    if section.enforce_tls:
        argv.append("--enforce-tls")
    if section.pki_dir is not None:
        argv += ["--pki-dir", str(section.pki_dir)]
    return argv


class Iso15118Link:
    """One EVSE's ISO 15118 link: the SECC process, its socket, the session it reports."""

    def __init__(self, section: Iso15118Section, *, rated_w: float) -> None:
        self._section = section
        self.process = SupervisedProcess(
            secc_argv(section, rated_w=rated_w),
            prefix="secc",
            backoff_s=section.restart_backoff_s,
            backoff_max_s=section.restart_backoff_max_s,
        )
        self.session = SessionView()
        self._writer: asyncio.StreamWriter | None = None
        self._connected_once = False
        self._offer: EvseOffer | None = None

    # --- EvSession ---------------------------------------------------------------------
    async def run(self) -> None:
        path = self._section.socket
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(self._serve, path=str(path))
        try:
            async with server:
                await self.process.run()
        finally:
            path.unlink(missing_ok=True)

    async def read_charging_needs(self) -> EvChargingNeeds | None:
        if self._writer is None:
            if not self._connected_once and self.process.exits == 0:
                return None  # still starting (the JVM warms): no EV session yet, no fault
            raise SeccUnavailable("the SECC process is not connected")
        params = self.session.params
        if params is None:
            return None
        return EvChargingNeeds(**needs_fields(params, now=datetime.now(UTC)))

    def follow(self, targets: EvseTargets) -> None:
        offer = EvseOffer(
            targets.target_w,
            targets.max_charge_w,
            targets.max_discharge_w,
            targets.present_w,
            targets.stop,
            targets.emergency,
        )
        self._offer = offer
        writer = self._writer
        if writer is not None and writer.transport.get_write_buffer_size() < _MAX_BUFFERED_BYTES:
            writer.write(encode(offer))

    def report_events_to(self, report: Callable[[str, dict[str, str]], None]) -> None:
        self.session.on_event = report

    def soc_pct(self) -> float | None:
        return soc_pct(self.session.present, self.session.params)

    def hold(self) -> str | None:
        if self._writer is None:
            return "SECC process not connected"
        return self.session.hold()

    # --- the SECC's connection ---------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            log.error("a second SECC connection refused")
            writer.close()
            return
        self._writer, self._connected_once = writer, True
        log.info("SECC process connected")
        if self._offer is not None:
            writer.write(encode(self._offer))
        try:
            await self._receive(reader)
        finally:
            self._writer = None
            self.session.disconnected()
            log.warning("SECC process disconnected")
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                try:
                    self.session.apply(decode(line))
                except WireError as exc:
                    log.error("bad line from the SECC ignored: %s", exc)


def open_ev_link(config: GatewayConfig) -> Iso15118Link:
    """``[ev_link] kind = "iso15118"``: the SECC of the station's (single) EVSE, rated at
    its ``max_power_w``."""
    if config.station is None or len(config.station.evses) != 1:
        raise ValueError('ev_link.kind = "iso15118" needs [station] with exactly one EVSE')
    rated_w = config.station.evses[0].max_power_w
    return Iso15118Link(config.ev_link.iso15118, rated_w=rated_w)


if TYPE_CHECKING:  # the factory matches the port's protocol (checked by mypy)
    _factory: EvLinkFactory = open_ev_link
