"""OCPP 2.1 / 2.0.1 over websockets for both roles, on top of the ``ocpp`` 2.1.0 package.

We keep the library's ``call`` / ``call_result`` dataclasses, enums and shipped OCA JSON
schemas, and replace the parts of ``ocpp.charge_point.ChargePoint`` that are broken or too
slow. Each fix has a test in ``tests/unit/common/ocpp21/test_ocpp21_defects.py`` whose
strict-xfail twin runs the bare library: when an upstream release fixes a defect that twin
starts failing, and the matching part of this package can go.

Defects of ``ocpp`` 2.1.0 fixed here (verified against the installed release):

1. **Outgoing key names** (:mod:`.keymap`). ``snake_to_camel_case`` breaks 43 OCPP 2.1 keys
   (``limit_L2/_L3``, ``setpoint_L2/_L3``, ``dischargeLimit_L2/_L3``,
   ``setpointReactive_L2/_L3``, ``min/maxCharge/DischargePower_L2/_L3``, the DER
   ``*ApparentPower_*`` / ``*ReactivePower_*`` keys, ``fixedPF*``, ``*DCInjection``,
   ``evSupportedDERControl``, ``priceScheduleID``, ``taxRuleID``, ``receiptUrl``,
   ``prioritizedEMAIDs``, ``soH``/``soC`` and ``LimitAtSoCType.soc`` sent as ``SoC``), so
   the library's own validation rejects its output. We derive the names per schema object
   from the shipped schemas at import; no list is written by hand.
2. **Incoming names for three 2.1 fields** (``iso15118SchemaVersion``,
   ``prioritizedEMAIDs``, ``iso15118CertificateHashData``) do not match the library's own
   dataclass fields; the schema-derived map pairs them with the dataclass fields.
3. **No answer to an unhandled action** under 2.1 (``_raise_key_error`` returns silently
   for "2.1"; fixed upstream after 2.1.0, unreleased): we answer CALLERROR
   ``NotImplemented``, also for names that are no action at all.
4. **Malformed frames** are logged and dropped by the library (the peer waits for ever);
   we answer ``RpcFrameworkError`` / ``MessageTypeNotSupported`` / ``ProtocolError`` (id
   ``"-1"`` when unreadable) and keep the connection.
5. **Message types 5 (CALLRESULTERROR) and 6 (SEND)** are rejected by the library's
   ``unpack``; we parse both: a SEND reaches its handler and is never answered, a
   CALLRESULTERROR is raised to the waiting caller (and sent when a 2.1 peer's CALLRESULT
   breaks its schema). ``NotifyPeriodicEventStream`` (SEND-only schema without the
   ``Request`` suffix) validates.
6. **Cost**: the library validates with ``jsonschema`` in a thread executor (≈ 560 µs per
   MeterValues CALL). We validate against the same schemas with validators compiled by
   ``fastjsonschema``, cached per action, and route without executor hops
   (``benchmarks/ocpp_codec.py`` measures both).
7. **CALLERROR texts**: the library swaps the descriptions of ``NotImplemented`` and
   ``NotSupported``; :mod:`.errors` uses the OCPP-J table. A timeout or CALLERROR is a typed
   exception here (the library returns ``None`` for a CALLERROR by default).

Layout: :mod:`.frames` (pure frame codec), :mod:`.schemas` (schemas and compiled
validators), :mod:`.keymap` (key shapes), :mod:`.payloads` (per-version payload codec),
:mod:`.endpoint` (connection, ``@on`` handlers, ``call``), :mod:`.transport` (URL, auth,
subprotocols, ``connect_to_csms``).
"""

from v2g_common.ocpp21.endpoint import (
    ChargingStationEndpoint,
    CsmsEndpoint,
    OcppEndpoint,
    after,
    on,
)
from v2g_common.ocpp21.errors import (
    FormatViolation,
    GenericError,
    InternalError,
    InvalidIdentity,
    MalformedFrame,
    MessageTypeNotSupported,
    NotImplemented,
    NotSupported,
    OccurrenceConstraintViolation,
    OcppAdapterError,
    OcppCallError,
    OcppConnectionClosed,
    OcppError,
    OcppTimeout,
    PropertyConstraintViolation,
    ProtocolError,
    RequestInvalid,
    ResponseInvalid,
    RpcFrameworkError,
    SecurityError,
    SubprotocolNotNegotiated,
    TypeConstraintViolation,
    UnsupportedSubprotocol,
)
from v2g_common.ocpp21.frames import (
    Call,
    CallError,
    CallResult,
    CallResultError,
    Frame,
    Send,
    decode_frame,
    encode_frame,
)
from v2g_common.ocpp21.payloads import PayloadCodec, codec_for
from v2g_common.ocpp21.transport import (
    SUBPROTOCOLS,
    basic_auth_header,
    connect_to_csms,
    select_subprotocol,
    server_subprotocols,
    station_url,
)

__all__ = [
    "SUBPROTOCOLS",
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "ChargingStationEndpoint",
    "CsmsEndpoint",
    "FormatViolation",
    "Frame",
    "GenericError",
    "InternalError",
    "InvalidIdentity",
    "MalformedFrame",
    "MessageTypeNotSupported",
    "NotImplemented",
    "NotSupported",
    "OccurrenceConstraintViolation",
    "OcppAdapterError",
    "OcppCallError",
    "OcppConnectionClosed",
    "OcppEndpoint",
    "OcppError",
    "OcppTimeout",
    "PayloadCodec",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RequestInvalid",
    "ResponseInvalid",
    "RpcFrameworkError",
    "SecurityError",
    "Send",
    "SubprotocolNotNegotiated",
    "TypeConstraintViolation",
    "UnsupportedSubprotocol",
    "after",
    "basic_auth_header",
    "codec_for",
    "connect_to_csms",
    "decode_frame",
    "encode_frame",
    "on",
    "select_subprotocol",
    "server_subprotocols",
    "station_url",
]
