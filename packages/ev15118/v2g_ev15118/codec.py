"""The iso15118 library's EXI codec (Exificient on a JVM through py4j), warmed before use.

A cold codec needs 0.5-1.5 s per message on a loaded 2-core machine (grammar loading, then the
JIT): longer than ISO 15118's 2-s message timeouts (SupportedAppProtocol, SessionSetup), so
the first session of a fresh process would time out. Both our processes therefore encode and
decode one message of every namespace they use until the codec is fast, before they open
SDP (measured: docs/iso15118.md).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from iso15118.shared.exificient_exi_codec import ExificientEXICodec
from iso15118.shared.messages.enums import Namespace

__all__ = ["warm_codec"]

log = logging.getLogger(__name__)

_HEADER = {"SessionID": "0000000000000000", "TimeStamp": 1796317951}
_V2_BODY = {"Header": {"SessionID": "00"}, "Body": {"SessionSetupReq": {"EVCCID": "000000000000"}}}
_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        Namespace.SAP.value,
        {
            "supportedAppProtocolReq": {
                "AppProtocol": [
                    {
                        "ProtocolNamespace": Namespace.ISO_V20_DC.value,
                        "VersionNumberMajor": 1,
                        "VersionNumberMinor": 0,
                        "SchemaID": 1,
                        "Priority": 1,
                    }
                ]
            }
        },
    ),
    (
        Namespace.ISO_V20_COMMON_MSG.value,
        {"SessionSetupReq": {"Header": _HEADER, "EVCCID": "WMIV1234567890ABCDEX"}},
    ),
    (Namespace.ISO_V20_DC.value, {"DC_CableCheckReq": {"Header": _HEADER}}),
    (Namespace.ISO_V20_AC.value, {"AC_ChargeParameterDiscoveryReq": {"Header": _HEADER}}),
    (Namespace.ISO_V2_MSG_DEF.value, {"V2G_Message": _V2_BODY}),
    (Namespace.DIN_MSG_DEF.value, {"V2G_Message": _V2_BODY}),
]


def warm_codec(*, fast_s: float = 0.05, budget_s: float = 15.0) -> ExificientEXICodec:
    """A started codec whose round trip of every sample namespace took under ``fast_s`` on
    average, or that has been warmed for ``budget_s``, whichever comes first."""
    started = time.monotonic()
    codec = ExificientEXICodec()
    frames = [(namespace, json.dumps(body)) for namespace, body in _SAMPLES]
    rounds = 0
    while time.monotonic() - started < budget_s:
        rounds += 1
        round_started = time.monotonic()
        for namespace, text in frames:
            codec.decode(codec.encode(text, namespace), namespace)
        if time.monotonic() - round_started < fast_s * len(frames):
            break
    log.info("EXI codec warm after %d rounds, %.1f s", rounds, time.monotonic() - started)
    return codec
