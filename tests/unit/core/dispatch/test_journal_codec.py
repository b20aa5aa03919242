"""The journal's JSON shapes read back equal: the tracking contract of a request, and a
session record's end and stranded setpoint, survive a core restart."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.unit.core.dispatch.scripted_fleet import T0
from vpp_core.dispatch.journal_codec import (
    record_from_json,
    record_to_json,
    request_from_json,
    request_to_json,
)
from vpp_core.dispatch.ledger import SessionRecord
from vpp_core.dispatch.model import DispatchRequest, SessionKey


def test_a_request_keeps_its_tracking_contract() -> None:
    req = DispatchRequest(
        target_w=-50_000.0, start=T0, duration_s=600, tracking="energy", max_overshoot_pct=25.0
    )
    assert request_from_json(json.loads(json.dumps(request_to_json(req)))) == req
    old = {k: v for k, v in request_to_json(req).items() if k not in ("tracking",)}
    assert request_from_json(old).tracking == "power", "journaled before the contract"


def test_a_session_record_keeps_its_end_and_stranded_setpoint() -> None:
    key = SessionKey("CS1", 1, "tx1")
    rec = SessionRecord(key, setpoint_w=-4_000.0, profile_sent=True, stranded_w=-4_000.0)
    rec.dropped_at = rec.ended_at = T0 + timedelta(seconds=42)
    rec.drop_reason = "session ended"
    back = record_from_json(key, json.loads(json.dumps(record_to_json(rec))))
    assert back == rec
