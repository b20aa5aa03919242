"""A CSMS that is not ours: the ``ocpp`` library's own ``ChargePoint`` (v2.1 or v2.0.1) in the
CSMS role, served with plain ``websockets``, every frame both ways recorded and checked
against the OCA schemas (:class:`~tests.doubles.oca_schemas.ValidatingConnection`).

Known defects of ``ocpp`` 2.1.0 (docs: /work/shared/OCPP21-V2X.md) are worked around here,
in the harness, never in our adapter:

* an action without a handler gets no reply at all under 2.1: :meth:`_Csms.route_message`
  answers CALLERROR ``NotImplemented`` for it first;
* a CALLERROR is returned as ``None`` by ``call`` unless ``suppress=False``:
  :meth:`ForeignCsms.call` always passes it, so the error is raised;
* outgoing snake->camel conversion breaks some 2.1 keys (``*_L2``, ``LimitAtSoC.soc``...):
  the commands these tests send use none of them.

Station-initiated messages are answered with fixed, schema-valid answers; a SignCertificate
is Accepted when ``accept_signing`` (its CSR lands in ``csrs`` for the test to sign). Over
TLS, ``peer_serials`` has the client certificate each connection was made with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.doubles.loopback import (
    LoopbackServer,
    NotImplementedFallback,
    basic_auth_refusal,
    peer_certificate,
)
from tests.doubles.oca_schemas import ValidatingConnection

__all__ = ["ForeignCsms"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _handlers(results: Any) -> dict[str, Any]:
    """The station-initiated actions a CSMS must answer, for one version's result classes."""

    class Handlers:
        @on("BootNotification")
        def boot(self, **_: Any) -> Any:
            return results.BootNotification(
                current_time=_now(), interval=self.heartbeat_s, status=self.boot_status
            )

        @on("Heartbeat")
        def heartbeat(self, **_: Any) -> Any:
            return results.Heartbeat(current_time=_now())

        @on("StatusNotification")
        def status(self, **_: Any) -> Any:
            return results.StatusNotification()

        @on("TransactionEvent")
        def transaction_event(self, **_: Any) -> Any:
            return results.TransactionEvent()

        @on("NotifyEVChargingNeeds")
        def needs(self, **_: Any) -> Any:
            return results.NotifyEVChargingNeeds(status="Accepted")

        @on("MeterValues")
        def meter_values(self, **_: Any) -> Any:
            return results.MeterValues()

        @on("NotifyReport")
        def notify_report(self, **_: Any) -> Any:
            return results.NotifyReport()

        @on("ReportChargingProfiles")
        def profiles(self, **_: Any) -> Any:
            return results.ReportChargingProfiles()

        @on("LogStatusNotification")
        def log_status(self, **_: Any) -> Any:
            return results.LogStatusNotification()

        @on("FirmwareStatusNotification")
        def firmware_status(self, **_: Any) -> Any:
            return results.FirmwareStatusNotification()

        @on("SecurityEventNotification")
        def security_event(self, **_: Any) -> Any:
            return results.SecurityEventNotification()

        @on("SignCertificate")
        def sign_certificate(self, csr: str, **_: Any) -> Any:
            self.csrs.append(csr)
            return results.SignCertificate(status="Accepted" if self.accept_signing else "Rejected")

    return {k: v for k, v in vars(Handlers).items() if not k.startswith("__")}


class _Csms(NotImplementedFallback):
    """Shared by both versions' classes: harness state, NotImplemented for the unhandled."""

    heartbeat_s = 300
    boot_status = "Accepted"

    def _init_harness(self, csrs: list[str], accept_signing: bool) -> None:
        self.csrs = csrs
        self.accept_signing = accept_signing


Csms21 = type("Csms21", (_Csms, ChargePoint21), _handlers(result21))
Csms201 = type("Csms201", (_Csms, ChargePoint201), _handlers(result201))


class ForeignCsms(LoopbackServer):
    """``async with ForeignCsms() as csms``; configure the station with ``csms.url``."""

    def __init__(
        self,
        *,
        subprotocols: tuple[str, ...] = ("ocpp2.1",),
        passwords: dict[str, str] | None = None,
        ssl_context: Any = None,
        accept_signing: bool = False,
    ) -> None:
        super().__init__(ssl_context=ssl_context, subprotocols=subprotocols)
        self._passwords = passwords
        self.accept_signing = accept_signing
        self.csrs: list[str] = []
        self.connections: list[ValidatingConnection] = []
        #: Serial of the client certificate each connection's TLS handshake verified (None
        #: without TLS or client certificate), in the order of ``connections``.
        self.peer_serials: list[int | None] = []
        self.cp: Any = None
        self.connected = asyncio.Event()

    @property
    def connection(self) -> ValidatingConnection:
        return self.connections[-1]

    @property
    def violations(self) -> list[str]:
        return [v for c in self.connections for v in c.violations]

    def calls(self, action: str) -> list[Any]:
        """CALL payloads ``action`` the station sent, over every connection, in order."""
        return [p for c in self.connections for p in c.calls(action, "in")]

    async def call(self, request: Any, *, timeout_s: float = 10.0) -> Any:
        """Send a command with the library's ``call``; a CALLERROR is raised."""
        assert self.cp is not None, "no station connected"
        return await asyncio.wait_for(self.cp.call(request, suppress=False), timeout_s)

    async def wait_for(self, predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():  # noqa: ASYNC110 - frames arrive on the library's task
                await asyncio.sleep(0.02)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        return basic_auth_refusal(self._passwords, request)

    async def _handle(self, ws: ServerConnection) -> None:
        connection = ValidatingConnection(ws)
        self.connections.append(connection)
        peer = peer_certificate(ws)
        self.peer_serials.append(int(str(peer["serialNumber"]), 16) if peer else None)
        identity = ws.request.path.rsplit("/", 1)[-1] if ws.request else "?"
        kind = Csms201 if ws.subprotocol == "ocpp2.0.1" else Csms21
        cp = kind(identity, connection)
        cp._init_harness(self.csrs, self.accept_signing)
        self.cp = cp
        self.connected.set()
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        finally:
            if self.cp is cp:
                self.cp = None
                self.connected.clear()
