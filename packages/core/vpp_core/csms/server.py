"""The CSMS websocket server: handshake auth, one :class:`StationEndpoint` per station.

Per connection: the websockets connection (no compression, bounded frame size and queue),
a token-bucket wrapper and the endpoint with its two tasks; nothing else. A newer
connection of the same identity replaces the older one (a station that rebooted without
closing). ``async with CsmsServer(...) as csms:`` listens until the block exits.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from datetime import datetime
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from v2g_common.ocpp21 import select_subprotocol, server_subprotocols
from v2g_common.pki import server_context
from v2g_common.redaction import redact_credentials
from vpp_core.csms.admission import PasswordLogins, PasswordRehashStore
from vpp_core.csms.auth import HandshakeAuthority, identity_from_path
from vpp_core.csms.certificates import PeerCertificate
from vpp_core.csms.commands import StationCommander
from vpp_core.csms.config import CsmsConfig
from vpp_core.csms.connection import ThrottledConnection
from vpp_core.csms.equipment import Equipment
from vpp_core.csms.handlers import StationEndpoint, utc_now
from vpp_core.csms.metrics import CsmsMetrics
from vpp_core.csms.opening import OpeningGate, gated_listener
from vpp_core.csms.operations import StationOperations
from vpp_core.csms.tls_buffers import limit_tls_read_buffer
from vpp_core.fleet.model import StationEntry
from vpp_core.fleet.state import FleetState
from vpp_core.supervision import TaskSupervisor

__all__ = ["CsmsServer"]

log = logging.getLogger(__name__)
_COMMANDS = (
    "SetChargingProfile",
    "ClearChargingProfile",
    "UpdateDynamicSchedule",
    "GetChargingProfiles",
    "GetCompositeSchedule",
    "NotifyAllowedEnergyTransfer",
    "TriggerMessage",
    "GetVariables",
    "SetVariables",
    "GetBaseReport",
    "Reset",
    "RequestStartTransaction",
    "RequestStopTransaction",
    "ChangeAvailability",
    "CertificateSigned",
)


def tls_context(config: CsmsConfig) -> ssl.SSLContext | None:
    """The listener's TLS context: server cert, and client-cert verification for profile 3."""
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    limit_tls_read_buffer()  # 16 KiB per connection, not 256 KiB (tls_buffers.py)
    return server_context(
        config.tls_cert_file,
        config.tls_key_file,
        client_ca=config.tls_client_ca_file,
        require_client_cert=False,  # profile-2 stations on the same port present none
    )


class CsmsServer:
    """OCPP server for the fleet. ``commands`` sends smart-charging commands to connected
    stations, ``operations`` the management ones (device model, reset, remote start/stop,
    availability, certificate renewal). ``rehash_store`` (the fleet store) takes the
    password hashes rewritten in the current scheme at login."""

    def __init__(
        self,
        config: CsmsConfig,
        fleet: FleetState,
        *,
        metrics: CsmsMetrics | None = None,
        supervisor: TaskSupervisor | None = None,
        equipment: Equipment | None = None,
        rehash_store: PasswordRehashStore | None = None,
        clock: Callable[[], datetime] = utc_now,
        on_connect: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        #: Awaited with the identity before a new connection's first message is handled.
        self.on_connect = on_connect
        self.fleet = fleet
        self.metrics = metrics or CsmsMetrics()
        self.supervisor = supervisor or TaskSupervisor(self.metrics.registry)
        #: idToken policy, certificates, device models (in memory only when not given).
        self.equipment = equipment or Equipment.from_config(config)
        self._clock = clock
        self.connections: dict[str, tuple[StationEndpoint, ServerConnection]] = {}
        self.endpoints: dict[str, StationEndpoint] = {}
        self.authority = HandshakeAuthority(
            allow_security_profile_1=config.allow_security_profile_1,
            passwords=PasswordLogins(
                workers=config.auth_workers,
                queue_max=config.auth_queue_max,
                retry_after_s=config.auth_retry_after_s,
                rehash_store=rehash_store,
                on_rehash=lambda result: self.metrics.password_rehashes.labels(result).inc(),
            ),
            on_refusal=lambda status: self.metrics.refusals.labels(str(int(status))).inc(),
            certificates=self.equipment.certificates,
        )
        self.opening = OpeningGate(
            limit=config.max_opening_connections,
            expire_after_s=config.open_timeout_s,
            on_refused=self.metrics.opening_refusals.inc,
        )
        self.metrics.opening_connections.set_function(lambda: self.opening.opening)
        self.commands = StationCommander(
            self.endpoints, fleet, self.metrics, timeout_s=config.command_timeout_s, clock=clock
        )
        self.operations = StationOperations(
            self.commands,
            self.endpoints,
            self.equipment,
            timeout_s=config.command_timeout_s,
            clock=clock,
        )
        self._stack = AsyncExitStack()
        self._server: Server | None = None
        # websockets logs handshake headers at DEBUG: never a station's Basic credential
        self._ws_log = logging.getLogger("websockets.server")
        redact_credentials(self._ws_log)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        """The bound port (useful with ``port = 0``)."""
        assert self._server is not None, "not listening"
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> CsmsServer:
        c = self.config
        self.set_entries(self.fleet.entries.values())
        self._server = await self._stack.enter_async_context(
            serve(
                self._serve_station,
                sock=gated_listener(c.host, c.port, backlog=c.listen_backlog, gate=self.opening),
                ssl=tls_context(c),
                process_request=self._process_request,
                subprotocols=server_subprotocols(c.subprotocols),
                select_subprotocol=select_subprotocol,
                compression=None,  # deflate costs ~64 KiB per connection and CPU per frame
                max_size=c.max_frame_bytes,
                max_queue=c.max_queued_frames,
                open_timeout=c.open_timeout_s,
                ping_interval=c.ping_interval_s or None,
                ping_timeout=c.ping_timeout_s,
                close_timeout=2.0,
                logger=self._ws_log,
                backlog=c.listen_backlog,  # asyncio calls listen() again with it
            )
        )
        tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._tasks.append(
            tasks.create_task(
                self.supervisor.keep_running("csms-profile-resync", self.commands.run_resyncs),
                name="csms-profile-resync",
            )
        )
        warm_up = self.supervisor.contain("csms-warm-up", self._warm_up())
        self._tasks.append(tasks.create_task(warm_up, name="csms-warm-up"))
        log.info("CSMS listening on %s:%d (%s)", c.host, self.port, "wss" if c.tls else "ws")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await self._stack.__aexit__(exc_type, exc, tb)
        self.authority.close()

    async def _warm_up(self) -> None:
        """Compile the OCPP validators once listening, one action at a time between serving:
        before listening they were ~15 % of a restart's CPU ahead of the first station (a
        validator not compiled yet is compiled on its first message)."""
        for subprotocol in self.config.subprotocols:
            for _ in StationEndpoint.warm_up_steps(subprotocol, calls=_COMMANDS):
                await asyncio.sleep(0)

    def set_entries(self, entries: Iterable[StationEntry]) -> None:
        """Install the whole registry (at start, before stations connect)."""
        entries = list(entries)
        self.fleet.set_entries(entries)
        self.authority.entries = {e.station_id: e for e in entries}

    async def apply_registry(self, changed: Iterable[StationEntry]) -> None:
        """Apply changed registry entries; close the connections of stations now disabled."""
        changed = list(changed)
        self.fleet.update_entries(changed)
        for entry in changed:
            self.authority.entries[entry.station_id] = entry
        for entry in changed:
            connection = self.connections.get(entry.station_id)
            if connection is not None and not entry.enabled:
                log.warning("%s: disabled, closing its connection", entry.station_id)
                await _close_quietly(connection[1], "station disabled", code=1008)

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        self.opening.decided(ws.remote_address)  # its opening phase ends with the decision
        return await self.authority.process_request(ws, request)

    async def _serve_station(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        identity = identity_from_path(ws.request.path)
        assert identity is not None  # admitted by process_request
        c = self.config
        throttled = ThrottledConnection(
            ws,
            rate_per_s=c.max_messages_per_s,
            burst=c.message_burst,
            on_frame=self.metrics.count_frame,
        )
        peer = _peer_certificate(ws)
        endpoint = StationEndpoint(
            identity,
            throttled,
            fleet=self.fleet,
            metrics=self.metrics,
            heartbeat_interval_s=c.heartbeat_interval_s,
            equipment=self.equipment,
            peer_certificate=peer,
            response_timeout_s=c.command_timeout_s,
            clock=self._clock,
        )
        previous = self.connections.get(identity)
        self.connections[identity] = (endpoint, ws)
        self.endpoints[identity] = endpoint
        self.fleet.station_connected(identity, subprotocol=ws.subprotocol, now=self._clock())
        self.metrics.connections.inc()
        self.metrics.connects.inc()
        try:
            if previous is not None:
                log.info("%s: new connection replaces the old one", identity)
                await _close_quietly(previous[1], "replaced by a new connection")
            if peer is not None:
                certificates = self.equipment.certificates
                changed = certificates.connected(identity, peer, now=self._clock())
                await self.equipment.save_certificates(changed)
            if self.on_connect is not None:
                await self.supervisor.contain("csms-on-connect", self.on_connect(identity))
            await self.supervisor.contain("csms-connection", endpoint.run())
        finally:
            self.metrics.connections.dec()
            if self.connections.get(identity, (None,))[0] is endpoint:
                del self.connections[identity]
                del self.endpoints[identity]
                self.fleet.station_disconnected(identity, now=self._clock())


def _peer_certificate(ws: ServerConnection) -> PeerCertificate | None:
    """The verified client certificate of a TLS connection (security profile 3), if any."""
    transport = ws.transport
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    return PeerCertificate.from_peercert(tls.getpeercert()) if tls is not None else None


async def _close_quietly(ws: Any, reason: str, *, code: int = 1000) -> None:
    try:
        await ws.close(code, reason)
    except ConnectionClosed:
        pass
