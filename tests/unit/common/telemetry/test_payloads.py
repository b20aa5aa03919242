"""Versioned payloads: the wire form, validation, and the topic as the trusted identity."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from v2g_common.telemetry import (
    PayloadError,
    SiteEvent,
    SiteSummary,
    SiteTopic,
    decode_message,
    encode_message,
)

AT = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
SUMMARY_TOPIC = SiteTopic("north", "site-a", "summary")
EVENT_TOPIC = SiteTopic("north", "site-a", "event")


def summary(**overrides: object) -> SiteSummary:
    values: dict[str, object] = {
        "site": "site-a",
        "region": "north",
        "stream": "0f1e",
        "seq": 7,
        "at": AT,
        "interval_s": 10,
        "chargers": 2,
        "chargers_reporting": 2,
        "sessions_connected": 2,
        "v2x_sessions": 1,
        "available_discharge_w": 7000,
        "available_charge_w": 11000,
        "power_w": -3500,
        "soc_min_pct": 40,
        "soc_mean_pct": 60,
        "soc_max_pct": 80,
        "energy_import_wh": 1200,
        "energy_export_wh": 300,
        "fail_safe": False,
    }
    values.update(overrides)
    return SiteSummary.model_validate(values)


def wire(message: SiteSummary | SiteEvent, **changes: object) -> bytes:
    data = json.loads(encode_message(message))
    data.update(changes)
    return json.dumps(data).encode()


def test_summary_wire_form_carries_schema_and_units() -> None:
    data = json.loads(encode_message(summary()))
    assert data["schema"] == "vpp.site.summary/1"
    assert data["power_w"] == -3500
    assert data["at"] == "2026-11-21T10:00:00Z"
    assert "schema_id" not in data


def test_round_trip_summary_and_event() -> None:
    s = summary()
    assert decode_message(SUMMARY_TOPIC, encode_message(s)) == s
    e = SiteEvent(
        site="site-a",
        region="north",
        stream="0f1e",
        seq=8,
        at=AT,
        code="FAIL_SAFE_TRIP",
        severity="critical",
        charger="cp-1",
        detail={"after_s": 30, "reason": "comms loss"},
    )
    assert decode_message(EVENT_TOPIC, encode_message(e)) == e


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "json"),
        (b"[1, 2]", "schema"),
        (wire(summary(), schema="vpp.site.summary/99"), "schema"),
        (wire(summary(), available_discharge_w=-5), "fields"),
        (wire(summary(), soc_max_pct=101), "fields"),
        (wire(summary(), at="2026-11-21T10:00:00"), "fields"),  # naive time
        (wire(summary(), seq=-1), "fields"),
        (wire(summary(), surprise=1), "fields"),
        (wire(summary(), site="site-b"), "topic_mismatch"),
        (wire(summary(), region="south"), "topic_mismatch"),
        (b"{" + b" " * 20000 + b"}", "size"),
    ],
)
def test_bad_payloads_get_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        decode_message(SUMMARY_TOPIC, payload)
    assert err.value.reason == reason


def test_summary_on_event_topic_is_refused() -> None:
    with pytest.raises(PayloadError) as err:
        decode_message(EVENT_TOPIC, encode_message(summary()))
    assert err.value.reason == "topic_mismatch"


def test_nan_power_is_refused() -> None:
    with pytest.raises(PayloadError):
        decode_message(SUMMARY_TOPIC, wire(summary(), power_w=float("nan")))
