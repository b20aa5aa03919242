"""A long outage with a small outbox: summaries are dropped oldest first and reported in one
OUTBOX_DROPPED event that grows while unsent; events are kept. The broker address has
nothing listening, so nothing is ever acknowledged (a real paho client keeps retrying)."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import TestPki
from v2g_gateway.uplink import OUTBOX_DROPPED, ChargerState, SiteUplink, UplinkConfig


class OneCharger:
    async def read_charger_state(self) -> ChargerState:
        return ChargerState("cp-1", 1, 1, 7000.0, 11000.0, -3000.0, (55.0,), 1.0, 2.0, False)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_uplink(tmp_path: Path, pki: TestPki, **overrides: Any) -> UplinkConfig:
    """Site ``site-a`` with nothing listening at its broker address: the outbox keeps all."""
    cert, key = pki.client("site-a")
    values: dict[str, Any] = {
        "site": "site-a",
        "region": "north",
        "broker_host": "127.0.0.1",
        "broker_port": unused_port(),
        "ca_file": pki.ca,
        "cert_file": cert,
        "key_file": key,
        "summary_interval_s": 3600,  # summaries come from summarize_now() only
        "outbox_path": tmp_path / "outbox.sqlite3",
        "outbox_fsync": False,
    }
    values.update(overrides)
    return UplinkConfig(**values)


def rows(path: Path) -> list[tuple[int, str, dict[str, object]]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT seq, kind, payload FROM outbox ORDER BY seq").fetchall()
    return [(seq, kind, json.loads(payload)) for seq, kind, payload in found]


async def test_outage_drops_summaries_reports_once_keeps_events(
    tmp_path: Path, pki: TestPki
) -> None:
    config = unreachable_uplink(tmp_path, pki, outbox_max_messages=20)
    async with SiteUplink(config, {"cp-1": OneCharger()}) as uplink:
        uplink.record_event("FAIL_SAFE_TRIP", severity="critical", charger="cp-1")
        for _ in range(60):
            await uplink.summarize_now()
        status = uplink.status
    left = rows(config.outbox_path)
    kinds = [(kind, p.get("code")) for _, kind, p in left]
    assert ("event", "FAIL_SAFE_TRIP") in kinds
    drop_events = [p for _, kind, p in left if p.get("code") == OUTBOX_DROPPED]
    assert len(drop_events) == 1  # merged, not one per batch
    detail = drop_events[0]["detail"]
    assert isinstance(detail, dict)
    assert detail["dropped_summaries"] == status.dropped_summaries > 0
    summaries = [seq for seq, kind, _ in left if kind == "summary"]
    assert detail["last_seq"] < summaries[0]  # what is left is newer than what was dropped
    assert summaries == sorted(summaries)
    assert summaries[-1] == max(seq for seq, _, _ in left)
    assert len(left) <= 20 + 1  # bound (+ the drop report itself, an event)
