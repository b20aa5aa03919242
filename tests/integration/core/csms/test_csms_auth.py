"""Security profiles 2 and 3 at the handshake: who gets in, who gets 401/403."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.integration.core.csms.conftest import PASSWORD, CsmsUnderTest, boot_payload

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("identity", "credentials"),
    [
        pytest.param("CS-0001", {"password": PASSWORD}, id="sp2-good-password"),
        pytest.param("CS-0002", {"cert_identity": "CS-0002"}, id="sp3-good-cert"),
    ],
)
async def test_admitted_stations_are_served(
    csms: CsmsUnderTest, identity: str, credentials: dict[str, Any]
) -> None:
    async with csms.station(identity, **credentials) as station:
        reply = await station.call("BootNotification", boot_payload())
    assert reply[0] == 3
    assert reply[2]["status"] == "Accepted"
    assert csms.server.fleet.stations[identity].vendor == "V"


@pytest.mark.parametrize(
    ("identity", "credentials", "status"),
    [
        pytest.param("CS-0001", {"password": "wrong-password-000"}, 401, id="sp2-bad-password"),
        pytest.param("CS-0001", {}, 401, id="sp2-no-credentials"),
        pytest.param("CS-0002", {"password": PASSWORD}, 403, id="password-for-sp3-station"),
        pytest.param("CS-0002", {"cert_identity": "CS-0003"}, 403, id="sp3-cert-of-other-station"),
        pytest.param("CS-0002", {}, 403, id="sp3-no-cert"),
        pytest.param("CS-OFF", {"password": PASSWORD}, 403, id="disabled-station"),
        pytest.param("CS-9999", {"password": PASSWORD}, 403, id="unknown-station"),
        pytest.param("LAB-1", {"password": PASSWORD}, 403, id="sp1-not-allowed"),
    ],
)
async def test_refused_at_handshake(
    csms: CsmsUnderTest, identity: str, credentials: dict[str, Any], status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with csms.station(identity, **credentials):
            pass
    assert refused.value.response.status_code == status
    assert identity not in csms.server.endpoints
    assert identity not in csms.server.fleet.stations  # nothing recorded for intruders


async def test_no_common_subprotocol_refused(csms: CsmsUnderTest) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with csms.station("CS-0001", password=PASSWORD, subprotocols=("ocpp1.6",)):
            pass
    assert refused.value.response.status_code == 400


async def test_ocpp201_station_is_served_with_its_schemas(csms: CsmsUnderTest) -> None:
    async with csms.station("CS-0001", password=PASSWORD, subprotocols=("ocpp2.0.1",)) as station:
        assert station.ws.subprotocol == "ocpp2.0.1"
        reply = await station.call("BootNotification", boot_payload())
    assert reply[0] == 3
    assert reply[2]["status"] == "Accepted"
    assert csms.server.fleet.stations["CS-0001"].subprotocol == "ocpp2.0.1"
