"""Frequency services over the API of a running core, for the e2e tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from v2g_sim.ev import EvSpec

POLL_S = 0.25


def ev(station_id: str) -> EvSpec:
    """Bidirectional, 60 kWh at 60 %, 10 kW each way: 20 of them sustain a 0.1 MW share
    (5 kW each) for FCR's 15 min with room."""
    return EvSpec(
        ev_id=f"EV-{station_id}", soc_pct=60.0, target_soc_pct=None, departure_in_s=None,
        max_discharge_w=10_000.0, max_charge_w=10_000.0,
    )  # fmt: skip


async def create_service(api: httpx.AsyncClient, capacity_mw: float) -> str:
    """An FCR service on the whole fleet. A core just started clears the service profile an
    earlier core may have left on each EVSE as its station comes back, and claims the session
    meanwhile: a service planned then leaves it out, so try again (bounded)."""
    body = {"product": "fcr", "capacity_mw": capacity_mw, "duration_s": 600}
    async with asyncio.timeout(20):
        while True:
            created = await api.post("/services", json=body)
            assert created.status_code == 201, created.text
            service: dict[str, Any] = created.json()
            if service["plan"]["feasible"]:
                return str(service["id"])
            await api.delete(f"/services/{service['id']}")
            await asyncio.sleep(1.0)


async def wait_holding(
    api: httpx.AsyncClient, service_id: str, capacity_mw: float
) -> dict[str, Any]:
    """The service once every share's profile is accepted (the stations' answers)."""
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(30):
            while True:
                body = (await api.get(f"/services/{service_id}")).json()
                held = body["holding_mw"]["discharge"]
                if body["status"] == "holding" and held >= capacity_mw - 1e-9:
                    return body
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"service never held in full: {body}") from None
