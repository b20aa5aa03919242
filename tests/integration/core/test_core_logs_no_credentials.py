"""No credential in any log at any level (issue 13 item 6): ``vpp-core --log-level DEBUG run``
logged each profile-2 station's ``Authorization: Basic`` header (its password, base64).

The core runs as a real process at DEBUG; profile-2 stations connect with right and wrong
passwords (one through the station's own ``connect_to_csms``, whose DEBUG log is captured
here), the API is called with the right token, a wrong one and a Basic credential; then every
line the core wrote and every record the station side logged is searched for each secret in
clear and in base64."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import TestPki
from tests.support.core_process import CoreProcess, StationAccount
from v2g_common.ocpp21 import connect_to_csms
from v2g_common.pki import client_context

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PASSWORD_1 = "first-station-password-1"
PASSWORD_4 = "fourth-station-password-4"
WRONG = "not-the-password-000000"
WRONG_TOKEN = "wrong-api-token-0123456789"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def heartbeat(ws: object) -> list[object]:
    await ws.send(json.dumps([2, "hb-1", "Heartbeat", {}]))  # type: ignore[attr-defined]
    return list(json.loads(await ws.recv()))  # type: ignore[attr-defined]


async def test_no_password_or_token_in_any_log_at_debug(
    tmp_path: Path, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    stations = [
        StationAccount("CS-0001", 2, PASSWORD_1),
        StationAccount("CS-0004", 2, PASSWORD_4),
        StationAccount("CS-0002", 3),
    ]
    ssl = client_context(pki.ca)
    async with CoreProcess(
        tmp_path / "core", pki.layout, stations=stations, log_level="DEBUG"
    ) as core:
        with caplog.at_level(logging.DEBUG):
            # the station's own adapter (websockets.client logs its headers at DEBUG)
            ws = await connect_to_csms(core.csms_url, "CS-0001", ssl=ssl, password=PASSWORD_1)
            async with ws:
                assert (await heartbeat(ws))[0] == 3
        # a raw station with the right password, and one with a wrong one
        header = {"Authorization": "Basic " + b64(f"CS-0004:{PASSWORD_4}")}
        url = f"{core.csms_url}/CS-0004"
        async with connect(
            url, ssl=ssl, additional_headers=header, subprotocols=["ocpp2.1"]
        ) as ws4:  # type: ignore[list-item]
            assert (await heartbeat(ws4))[0] == 3
        wrong = {"Authorization": "Basic " + b64(f"CS-0004:{WRONG}")}
        with pytest.raises(InvalidStatus):
            async with connect(url, ssl=ssl, additional_headers=wrong, subprotocols=["ocpp2.1"]):  # type: ignore[list-item]
                pass
        # the API with the right token, a wrong one, and the token as a Basic credential
        async with httpx.AsyncClient(base_url=core.api_url, timeout=10) as http:
            right = await http.get(
                "/api/v1/fleet", headers={"Authorization": f"Bearer {core.token}"}
            )
            assert right.status_code == 200
            bad = await http.get(
                "/api/v1/fleet", headers={"Authorization": f"Bearer {WRONG_TOKEN}"}
            )
            assert bad.status_code == 403
            basic = {"Authorization": "Basic " + b64(f"operator:{core.token}")}
            assert (await http.get("/api/v1/fleet", headers=basic)).status_code == 401
        assert await core.stop() == 0
        core_log = core.log_text()

    secrets = {
        "password 1": PASSWORD_1,
        "password 4": PASSWORD_4,
        "wrong password": WRONG,
        "Basic credential 1": b64(f"CS-0001:{PASSWORD_1}"),
        "Basic credential 4": b64(f"CS-0004:{PASSWORD_4}"),
        "wrong Basic credential": b64(f"CS-0004:{WRONG}"),
        "API token": core.token,
        "wrong API token": WRONG_TOKEN,
        "API token as Basic": b64(f"operator:{core.token}"),
    }
    station_log = "\n".join(r.getMessage() + "\n" + (r.exc_text or "") for r in caplog.records)
    for what, secret in secrets.items():
        assert secret not in core_log, f"the core logged the {what}"
        assert secret not in station_log, f"the station logged the {what}"
    # the checks are not vacuous: both sides did log the handshake headers, at DEBUG
    assert "< Authorization: [redacted]" in core_log
    assert "> Authorization: [redacted]" in station_log
