"""The wired core (``run_core``) in-process: registry changes made while it runs take effect."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.core.csms.conftest import PASSWORD, CsmsUnderTest
from vpp_core.app import main, run_core
from vpp_core.config import CoreConfig
from vpp_core.csms import CsmsServer
from vpp_core.fleet import FleetStore, StationRegistry

pytestmark = pytest.mark.integration


async def test_cli_registry_changes_reach_the_running_core(tmp_path: Path, pki: Any) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    store = await FleetStore.open(url)
    registry = StationRegistry(store)
    now = datetime.now(UTC)
    await registry.add(
        "CS-0001", security_profile=2, site="s", region="r", password=PASSWORD, now=now
    )
    cert, key = pki.server("csms")
    config = CoreConfig.model_validate(
        {
            "csms": {
                "host": "127.0.0.1",
                "port": 0,
                "tls_cert_file": cert,
                "tls_key_file": key,
                "tls_client_ca_file": pki.ca,
                "ping_interval_s": 0,
            },
            "fleet": {"database_url": url, "registry_refresh_s": 0.05, "write_interval_s": 0.05},
            "metrics": {"port": 0},
            "runtime": {"gc_freeze_after_start": False},
        }
    )
    stop = asyncio.Event()
    thresholds = gc.get_threshold()  # run_core tunes the collector of its process
    ready: asyncio.Future[CsmsServer] = asyncio.get_running_loop().create_future()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_core(config, stop=stop, on_ready=ready.set_result))
        try:
            csms = CsmsUnderTest(await asyncio.wait_for(ready, 10), pki)
            with pytest.raises(InvalidStatus):
                async with csms.station("CS-0002", cert_identity="CS-0002"):
                    pass
            await registry.add(
                "CS-0002", security_profile=3, site="s", region="r", password=None, now=now
            )
            async with csms.station("CS-0001", password=PASSWORD) as first:
                assert (await first.call("Heartbeat", {}))[0] == 3
                await registry.set_enabled("CS-0001", False)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(first.ws.recv(), 5)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1008
            async with asyncio.timeout(5):
                while True:  # the new station is admitted once the core re-read the registry
                    try:
                        async with csms.station("CS-0002", cert_identity="CS-0002") as second:
                            assert (await second.call("Heartbeat", {}))[0] == 3
                            break
                    except InvalidStatus:
                        await asyncio.sleep(0.05)
        finally:
            stop.set()
    gc.set_threshold(*thresholds)
    state = await store.load(samples_in_memory=1)
    assert {s.station_id: s.connected for s in state.stations} == {
        "CS-0001": False,
        "CS-0002": False,
    }
    await store.close()


async def test_cli_token_changes_reach_authorize_of_the_running_core(
    tmp_path: Path, pki: Any
) -> None:
    """``vpp-core tokens add|block`` while the core runs: Authorize follows within the
    refresh interval (id_token_policy token_list)."""
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    store = await FleetStore.open(url)
    await StationRegistry(store).add(
        "CS-0001",
        security_profile=1,
        site="s",
        region="r",
        password=PASSWORD,
        now=datetime.now(UTC),
    )
    toml = tmp_path / "core.toml"
    toml.write_text(f'[fleet]\ndatabase_url = "{url}"\n')
    config = CoreConfig.model_validate(
        {
            "csms": {
                "host": "127.0.0.1",
                "port": 0,
                "allow_security_profile_1": True,
                "ping_interval_s": 0,
                "id_token_policy": "token_list",
            },
            "fleet": {"database_url": url, "registry_refresh_s": 0.05},
            "metrics": {"port": 0},
            "runtime": {"gc_freeze_after_start": False},
        }
    )
    stop = asyncio.Event()
    thresholds = gc.get_threshold()
    ready: asyncio.Future[CsmsServer] = asyncio.get_running_loop().create_future()
    token = {"idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}}

    async def status_becomes(station: Any, expected: str) -> None:
        async with asyncio.timeout(5):
            while (await station.call("Authorize", token))[2]["idTokenInfo"]["status"] != expected:  # noqa: ASYNC110 - the core polls the database
                await asyncio.sleep(0.05)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_core(config, stop=stop, on_ready=ready.set_result))
        try:
            csms = CsmsUnderTest(await asyncio.wait_for(ready, 10), pki)
            async with csms.station("CS-0001", password=PASSWORD) as station:
                assert (await station.call("Authorize", token))[2]["idTokenInfo"] == {
                    "status": "Unknown"
                }
                add = ["tokens", "add", "04A2B3C4", "--type", "ISO14443", "--config", str(toml)]
                assert await asyncio.to_thread(main, add) == 0
                await status_becomes(station, "Accepted")
                block = ["tokens", "block", "04A2B3C4", "--type", "ISO14443"]
                assert await asyncio.to_thread(main, [*block, "--config", str(toml)]) == 0
                await status_becomes(station, "Blocked")
        finally:
            stop.set()
    gc.set_threshold(*thresholds)
    await store.close()


def test_an_unreadable_signing_ca_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit status 2 (systemd does not restart it: RestartPreventExitStatus=2), the keys and
    the reason on stderr."""
    toml = tmp_path / "core.toml"
    toml.write_text(
        "[csms]\nhost = '127.0.0.1'\nport = 0\nallow_security_profile_1 = true\n"
        f"ca_cert_file = '{tmp_path / 'ca.pem'}'\nca_key_file = '{tmp_path / 'ca.key'}'\n"
        f"[fleet]\ndatabase_url = 'sqlite:///{tmp_path / 'fleet.db'}'\n"
        "[metrics]\nport = 0\n[runtime]\ngc_freeze_after_start = false\n"
    )
    with pytest.raises(SystemExit) as stopped:
        main(["--config", str(toml), "run"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"configuration error in {toml}" in err
    assert "csms.ca_cert_file / csms.ca_key_file: cannot load" in err
