"""OCPP 2.1 / 2.0.1 CSMS: handshake auth (security profiles 2 and 3), thin handlers over the
live fleet, and commands to stations (``StationCommander`` implements
``vpp_core.dispatch.ports.StationCommands``)."""

from vpp_core.csms.auth import HandshakeAuthority, identity_from_path
from vpp_core.csms.commands import StationCommander
from vpp_core.csms.config import CsmsConfig
from vpp_core.csms.errors import CsmsError, StationOffline
from vpp_core.csms.handlers import StationEndpoint
from vpp_core.csms.metrics import CsmsMetrics
from vpp_core.csms.server import CsmsServer, tls_context

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
