"""The gateway's ISO 15118 link against a stand-in SECC on its socket: what the SECC says
becomes needs, SoC and hold; the station's targets reach the SECC as offers; bad lines are
logged and skipped; a second SECC is refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.doubles.waiting import eventually
from tests.unit.ev15118.test_ev15118_wire_and_mapping import BPT
from v2g_ev15118.link import Iso15118Link, SeccUnavailable
from v2g_ev15118.wire import EvPresent, EvseOffer, SessionEnded, SessionState, decode, encode
from v2g_gateway.control.ports import EvseTargets
from v2g_gateway.devices import Iso15118Section


@contextlib.asynccontextmanager
async def running_link(tmp_path: Path) -> AsyncIterator[Iso15118Link]:
    # the supervised "SECC" is a process that exits at once: the link restarts it with
    # back-off while the test plays the SECC on the socket itself
    section = Iso15118Section(python=Path("/bin/false"), socket=tmp_path / "secc.sock")
    link = Iso15118Link(section, rated_w=11_000.0)
    task = asyncio.create_task(link.run())
    try:
        await eventually(section.socket.exists, timeout_s=5)
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_link_relays_the_session_both_ways(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_link(tmp_path) as link:
        assert link.hold() == "SECC process not connected"
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "secc.sock"))
        for message in (SessionState("DCChargeLoop", "ISO_15118_20_DC"), BPT):
            writer.write(encode(message))
        writer.write(b'{"v": 1, "type": "bogus"}\n')
        writer.write(encode(EvPresent(49.0, -6900.0, 400.0)))
        await eventually(lambda: link.soc_pct() == 49.0, timeout_s=5)
        needs = await link.read_charging_needs()
        assert needs is not None
        assert (needs.max_discharge_w, needs.bidirectional) == (10_000.0, True)
        assert link.hold() is None
        assert "bad line from the SECC ignored: unknown message type" in caplog.text

        link.follow(EvseTargets(-7000.0, 11_000.0, 10_000.0, -6900.0, False))
        line = await asyncio.wait_for(reader.readline(), timeout=5)
        assert decode(line) == EvseOffer(-7000.0, 11_000.0, 10_000.0, -6900.0, False)

        events: list[tuple[str, dict[str, str]]] = []
        link.report_events_to(lambda code, detail: events.append((code, detail)))
        writer.write(
            encode(SessionEnded("DCChargeLoop", "TimeoutError occurred", "EV_COMM_TIMEOUT"))
        )
        await eventually(lambda: link.hold() == "EV_COMM_TIMEOUT", timeout_s=5)
        assert events == [
            ("EV_COMM_TIMEOUT", {"state": "DCChargeLoop", "reason": "TimeoutError occurred"})
        ]

        _, second = await asyncio.open_unix_connection(str(tmp_path / "secc.sock"))
        await eventually(lambda: "a second SECC connection refused" in caplog.text, timeout_s=5)
        second.close()

        writer.close()
        await eventually(lambda: link.hold() == "SECC process not connected", timeout_s=5)
        with pytest.raises(SeccUnavailable):
            await link.read_charging_needs()
        assert link.process.exits >= 1  # /bin/false was restarted, not fatal


async def test_no_needs_and_no_fault_while_the_secc_starts(tmp_path: Path) -> None:
    section = Iso15118Section(python=Path("/bin/false"), socket=tmp_path / "secc.sock")
    link = Iso15118Link(section, rated_w=11_000.0)
    assert await link.read_charging_needs() is None


def test_the_daemon_hands_the_uplink_to_the_link(tmp_path: Path) -> None:
    """EV_COMM_TIMEOUT reaches the core as a site event (the uplink's report)."""
    from v2g_gateway.config import GatewayConfig
    from v2g_gateway.daemon import build_services
    from v2g_gateway.uplink.service import UplinkService

    config = GatewayConfig.model_validate(
        {
            "local_lease": {"enabled": False},
            "station": {
                "csms_url": "ws://127.0.0.1:1/ocpp",
                "identity": "CS-0001",
                "security_profile": 1,
                "password": "x" * 16,
                "state_dir": str(tmp_path / "state"),
            },
            "uplink": {
                "site": "site-1",
                "region": "r-1",
                "broker_host": "127.0.0.1",
                "ca_file": str(tmp_path / "ca.pem"),
                "cert_file": str(tmp_path / "c.pem"),
                "key_file": str(tmp_path / "c.key"),
                "outbox_path": str(tmp_path / "outbox.sqlite3"),
            },
            "ev_link": {"kind": "iso15118", "iso15118": {"socket": str(tmp_path / "s.sock")}},
        }
    )
    services = build_services(config)
    uplink = next(s for s in services if isinstance(s, UplinkService))
    station = next(s for s in services if s.name == "station")
    link = station._ev_link  # type: ignore[attr-defined]
    assert isinstance(link, Iso15118Link)
    assert link.session.on_event == uplink.report_event


def test_enforced_tls_without_certificates_is_a_config_error_naming_the_keys() -> None:
    with pytest.raises(ValidationError, match=r"enforce_tls needs ev_link\.iso15118\.pki_dir"):
        Iso15118Section(enforce_tls=True)
    section = Iso15118Section(enforce_tls=True, pki_dir=Path("/etc/v2g-gateway/pki/secc"))
    assert section.pki_dir == Path("/etc/v2g-gateway/pki/secc")
