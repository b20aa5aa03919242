"""Values that pass the schemas but that the fleet cannot take are the station's error: a
CALLERROR before any answer, the connection lives on, nothing reaches the fleet (found by the
OCPP-J fuzz: a ``NotifyEVChargingNeeds`` departure of year 9999 at -05:00 was answered
``Accepted`` and then failed in the recording after the answer)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.core.csms.conftest import (
    PASSWORD,
    CsmsUnderTest,
    needs_payload,
    tx_payload,
)

pytestmark = pytest.mark.integration
NOW = "2026-03-01T12:00:00Z"
NO_UTC_EQUIVALENT = "9999-12-31T23:59:59-05:00"  # beyond datetime.max once in UTC


def needs_departing(departure: str) -> dict[str, Any]:
    payload = needs_payload()
    payload["chargingNeeds"]["departureTime"] = departure
    return payload


def meter_scaled(multiplier: int) -> dict[str, Any]:
    sample = {"value": 7.0, "measurand": "Power.Active.Import",
              "unitOfMeasure": {"unit": "kW", "multiplier": multiplier}}  # fmt: skip
    return {"evseId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": [sample]}]}


BAD = [
    ("NotifyEVChargingNeeds", needs_departing(NO_UTC_EQUIVALENT)),
    ("NotifyEVChargingNeeds", {**needs_payload(), "timestamp": "0001-01-01T00:00:00+05:00"}),
    ("TransactionEvent", tx_payload("Started", 0, NO_UTC_EQUIVALENT)),
    ("StatusNotification", {"timestamp": NO_UTC_EQUIVALENT, "connectorStatus": "Occupied",
                            "evseId": 1, "connectorId": 1}),
    ("MeterValues", meter_scaled(400)),  # 7 kW x 10^400: no float holds it
]  # fmt: skip


@pytest.mark.parametrize(
    ("action", "payload"), BAD, ids=[f"{a}-{n}" for n, (a, _) in enumerate(BAD)]
)
async def test_values_the_fleet_cannot_take_get_a_callerror(
    csms: CsmsUnderTest, action: str, payload: dict[str, Any]
) -> None:
    async with csms.station("CS-0001", password=PASSWORD) as station:
        answer = await station.call(action, payload)
        assert answer[0] == 4, answer
        assert answer[2] == "FormatViolation", answer
        assert (await station.call("Heartbeat", {}))[0] == 3  # the connection lives on
    fleet = csms.server.fleet
    assert fleet.pending_needs == {}
    assert fleet.sessions_by_key == {}
    assert fleet.pending.samples == type(fleet.pending.samples)()
