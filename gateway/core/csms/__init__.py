"""OCPP 2.1 / 2.0.1 CSMS: handshake auth (security profiles 2 and 3), thin handlers over the
live fleet, and commands to stations (``StationCommander`` implements
``gateway.core.dispatch.ports.StationCommands``)."""

from gateway.core.csms.auth import HandshakeAuthority, identity_from_path
from gateway.core.csms.commands import StationCommander
from gateway.core.csms.config import CsmsConfig
from gateway.core.csms.errors import CsmsError, StationOffline
from gateway.core.csms.handlers import StationEndpoint
from gateway.core.csms.metrics import CsmsMetrics
from gateway.core.csms.server import CsmsServer, tls_context

__all__ = [
    "CsmsConfig",
    "CsmsError",
    "CsmsMetrics",
    "CsmsServer",
    "HandshakeAuthority",
    "StationCommander",
    "StationEndpoint",
    "StationOffline",
    "identity_from_path",
    "tls_context",
]
