"""``GET /api/v1/services/{id}/report`` over httpx's ASGI transport, with the real
FrequencyServices over a scripted fleet (virtual clock): capacity sampled per settlement
interval while the service holds, and the activations its stations' gateways reported,
judged against their shares' curves; 404 and the bearer guard."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.core.api.test_api import AUTH
from tests.unit.core.api.test_services_api import Api, api
from tests.unit.core.dispatch.scripted_fleet import until
from v2g_common.telemetry.activation import encode_series
from vpp_core.services.manager import ServiceStatus

__all__ = ["api"]  # the fixture: two sessions, the services and report routes


def step_detail(api: Api, *, after_s: float, delivered: float) -> dict[str, object]:
    """A gateway's summary of a step to 49.8 Hz (full activation) ``after_s`` into the
    window, its power reaching ``delivered`` x -5 kW at once."""
    started = api.clock.now() + timedelta(seconds=after_s)
    points = [(k / 10, 49.8, -5000.0 * delivered) for k in range(0, 51)]
    return {"started_at": started.isoformat(), "nominal_hz": 50.0, "baseline_power_w": 0.0,
            "series": encode_series(points)}  # fmt: skip


async def test_the_report_gives_capacity_per_interval_and_each_activation(api: Api) -> None:
    body = {"product": "fcr", "capacity_mw": 0.01, "duration_s": 600}
    created = (await api.client.post("/api/v1/services", json=body, headers=AUTH)).json()
    held = api.services.get(created["id"])
    await until(lambda: held.status is ServiceStatus.HOLDING, timeout_s=20)
    for _ in range(6):  # six control periods (5 s) of samples
        await api.clock.advance(5.0)

    assert api.services.record_activation("CS0", step_detail(api, after_s=0, delivered=1.0))
    assert api.services.record_activation("CS1", step_detail(api, after_s=0.2, delivered=0.5))
    assert not api.services.record_activation("CS7", step_detail(api, after_s=0, delivered=1))
    late = step_detail(api, after_s=3600, delivered=1.0)  # after the window: not this one's
    assert not api.services.record_activation("CS0", late)

    got = await api.client.get(f"/api/v1/services/{created['id']}/report", headers=AUTH)
    assert got.status_code == 200, got.text
    report = got.json()
    assert report["settlement_period_s"] == 900.0
    rows = {r["direction"]: r for r in report["capacity"]}
    assert set(rows) == {"discharge", "charge"}
    for row in rows.values():
        assert row["samples"] >= 6
        assert row["contracted_mw"] == pytest.approx(0.01)
        assert row["deliverable_min_mw"] == pytest.approx(0.01)
        assert row["covered"] is True
    (activation,) = report["activations"]
    fleet = activation["fleet"]
    assert (activation["direction"], activation["delta_f_hz"]) == ("discharge", -0.2)
    assert fleet["reference_w"] == pytest.approx(-10_000.0)
    assert fleet["t50_s"] == 0.0  # CS0 alone is 50 % of both at once; CS1 adds half its share
    assert fleet["t95_s"] is None  # 75 % at most
    assert activation["stations"]["CS1"]["delay_s"] == pytest.approx(0.2)
    assert activation["stations_reported"] == ["CS0", "CS1"]
    assert {r["figure"]: r["met"] for r in activation["requirements"]} == {
        "t50_s": True, "t100_s": False,
    }  # fmt: skip
    assert fleet["energy_ratio"] == pytest.approx(0.75, abs=0.02)


async def test_an_unknown_service_is_404_and_the_report_needs_the_token(api: Api) -> None:
    assert (await api.client.get("/api/v1/services/fs-x/report", headers=AUTH)).status_code == 404
    assert (await api.client.get("/api/v1/services/fs-x/report")).status_code == 401


async def test_an_afrr_report_lists_every_setpoint_requested_vs_delivered(api: Api) -> None:
    body = {"product": "afrr", "capacity_mw": 0.01, "duration_s": 600}
    created = (await api.client.post("/api/v1/services", json=body, headers=AUTH)).json()
    await until(lambda: len(api.fleet.calls("set")) == 2, timeout_s=20)
    url = f"/api/v1/services/{created['id']}"
    for power_mw in (0.004, 0.008):
        answer = await api.client.post(
            f"{url}/afrr-setpoints", json={"power_mw": power_mw}, headers=AUTH
        )
        assert answer.status_code == 201, answer.text
    report = (await api.client.get(f"{url}/report", headers=AUTH)).json()
    assert "requested (signed MW" in report["afrr_source"]
    rows = report["afrr_setpoints"]
    assert [(r["requested_mw"], r["signal"]) for r in rows] == [(-0.004, -4000), (-0.008, -8000)]
    assert rows[0]["delivered_mw"] == pytest.approx(
        sum(s.present_power_w for s in api.fleet.sessions()) / 1e6
    )
    assert rows[1]["delivered_mw"] is None  # in force
    fcr = {"product": "fcr", "capacity_mw": 0.01, "duration_s": 600}
    other = (await api.client.post("/api/v1/services", json=fcr, headers=AUTH)).json()
    fcr_report = await api.client.get(f"/api/v1/services/{other['id']}/report", headers=AUTH)
    assert (fcr_report.json()["afrr_source"], fcr_report.json()["afrr_setpoints"]) == (None, [])
