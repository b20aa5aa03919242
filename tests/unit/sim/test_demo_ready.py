"""The demo dispatches only once every plugged EV has reported its SoC and charging needs to
the core (``GET /fleet``), and a bounded wait names who is late and what they lack."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from v2g_sim.demo_ready import FleetNotReady, readiness_gaps, wait_ready

NEEDS_AT = "2026-01-15T12:00:00Z"


def session(
    sid: str, *, connected: bool = True, soc: float | None = 50.0, needs: bool = True
) -> dict[str, Any]:
    return {
        "station_id": sid,
        "connected": connected,
        "soc_pct": soc,
        "needs_reported_at": NEEDS_AT if needs else None,
    }


def test_gaps_name_what_each_station_lacks() -> None:
    sessions = [
        session("CS-1"),
        session("CS-2", needs=False),
        session("CS-3", soc=None, needs=False),
        session("CS-4", connected=False),
    ]
    assert readiness_gaps(sessions, ["CS-1", "CS-2", "CS-3", "CS-4", "CS-5"]) == {
        "CS-2": "no charging needs yet",
        "CS-3": "no SoC yet",
        "CS-4": "no connected session",
        "CS-5": "no connected session",
    }
    assert readiness_gaps(sessions, ["CS-1", "CS-2"], needs=False) == {}


def test_an_old_disconnected_session_does_not_hide_the_new_one() -> None:
    sessions = [session("CS-1", connected=False, needs=False), session("CS-1")]
    assert readiness_gaps(sessions, ["CS-1"]) == {}


def _fleet_api(replies: list[list[dict[str, Any]]]) -> httpx.AsyncClient:
    """A core whose ``/fleet`` answers each of ``replies`` in turn, then the last forever."""
    calls = iter(replies)
    last: list[list[dict[str, Any]]] = [replies[0]]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/fleet"
        last[0] = next(calls, last[0])
        return httpx.Response(200, json={"sessions": last[0]})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://core")


async def test_wait_returns_once_the_needs_arrive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("v2g_sim.demo_ready.POLL_S", 0.0)
    early = [session("CS-1"), session("CS-2", needs=False)]
    ready = [session("CS-1"), session("CS-2")]
    async with _fleet_api([early, early, ready]) as api:
        got = await wait_ready(api, ["CS-1", "CS-2"], timeout_s=5)
    assert [s["station_id"] for s in got] == ["CS-1", "CS-2"]


async def test_bounded_wait_names_the_late(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("v2g_sim.demo_ready.POLL_S", 0.01)
    sids = [f"CS-{i:02d}" for i in range(20)]
    stuck = [session(sid, needs=sid not in {"CS-03", "CS-11"}) for sid in sids]
    async with _fleet_api([stuck]) as api:
        with pytest.raises(FleetNotReady) as caught:
            await wait_ready(api, sids, timeout_s=0.2)
    assert caught.value.gaps == {"CS-03": "no charging needs yet", "CS-11": "no charging needs yet"}
    assert str(caught.value) == (
        "2 of 20 plugged EVs not ready for a dispatch after 0.2 s: "
        "CS-03 (no charging needs yet), CS-11 (no charging needs yet)"
    )


def test_a_long_late_list_is_cut_with_a_count() -> None:
    gaps = {f"CS-{i:02d}": "no SoC yet" for i in range(15)}
    text = str(FleetNotReady(gaps, of=50, waited_s=90.0))
    assert text.startswith("15 of 50 plugged EVs not ready for a dispatch after 90 s: CS-00")
    assert text.endswith("CS-11 (no SoC yet) and 3 more")
