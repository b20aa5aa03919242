"""Migration 5 and the equipment tables on SQLite and PostgreSQL: a database from before it is
upgraded in place; tokens, certificates and device models round-trip, and a running core's
poll sees only what changed; the ``vpp-core tokens|certificates|device-model`` CLI."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from vpp_core.app import main
from vpp_core.csms.certificates import PeerCertificate
from vpp_core.csms.config import CsmsConfig
from vpp_core.csms.equipment import Equipment, EquipmentSync
from vpp_core.fleet import FleetStore, schema
from vpp_core.fleet import equipment as fleet_equipment
from vpp_core.fleet.equipment import (
    CertificateRecord,
    DeviceVariable,
    EquipmentStore,
    IdTokenRecord,
)
from vpp_core.fleet.errors import StoreError
from vpp_core.fleet.store import async_url

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


async def test_a_database_from_before_gets_migration_5(fleet_db_url: str) -> None:
    engine = create_async_engine(async_url(fleet_db_url))
    async with engine.begin() as conn:
        await conn.run_sync(schema.schema_version.create)
        await conn.run_sync(schema._v1)
        await conn.execute(insert(schema.schema_version).values(version=1, applied_at=T0))
    await engine.dispose()
    store = await FleetStore.open(fleet_db_url)
    try:
        assert 5 in await store.schema_versions()
        await EquipmentStore(store.engine).put_token(
            IdTokenRecord("T", "ISO14443", "Accepted"), now=T0
        )
    finally:
        await store.close()


async def test_equipment_records_round_trip(fleet_db_url: str) -> None:
    store = await FleetStore.open(fleet_db_url)
    records = EquipmentStore(store.engine)
    try:
        await records.put_token(IdTokenRecord("A", "ISO14443", "Accepted", "G", T0), now=T0)
        tokens, revision = await records.tokens_since(0)
        assert tokens == [IdTokenRecord("A", "ISO14443", "Accepted", "G", T0)]
        assert await records.tokens_since(revision) == ([], revision)
        await records.put_token(IdTokenRecord("A", "ISO14443", "Blocked", "G", T0), now=T0)
        changed, _ = await records.tokens_since(revision)
        assert [t.status for t in changed] == ["Blocked"]
        with pytest.raises(StoreError, match="token status"):
            await records.put_token(IdTokenRecord("A", "ISO14443", "Maybe"), now=T0)

        issued = CertificateRecord("ab", "CS-1", T0 + timedelta(days=365), issued_at=T0)
        await records.put_certificates([issued])
        used = CertificateRecord(
            "ab", "CS-1", issued.not_after, issued_at=T0, first_used_at=T0, revoked_at=None
        )
        old = CertificateRecord("01", "CS-1", revoked_at=T0, revocation_reason="superseded")
        await records.put_certificates([used, old])
        assert {c.serial: c for c in await records.certificates("CS-1")} == {"ab": used, "01": old}
        _, cert_revision = await records.certificates_since(0)
        assert await records.certificates_since(cert_revision) == ([], cert_revision)

        row = DeviceVariable("EVSE", "Power", "22000", T0, evse_id=1, unit="W", data_type="decimal")
        top = DeviceVariable("OCPPCommCtrlr", "HeartbeatInterval", "300", T0)
        assert await records.save_variables("CS-1", [row, top]) == 2
        await records.save_variables(
            "CS-1", [DeviceVariable("OCPPCommCtrlr", "HeartbeatInterval", "60", T0)]
        )
        got = {(v.component, v.evse_id, v.variable): v for v in await records.variables("CS-1")}
        assert got[("EVSE", 1, "Power")] == row
        assert got[("OCPPCommCtrlr", None, "HeartbeatInterval")].value == "60"
        assert await records.variables("CS-2") == []
    finally:
        await store.close()


@pytest.fixture
def config(tmp_path: Path, fleet_db_url: str) -> Path:
    path = tmp_path / "core.toml"
    path.write_text(f'[fleet]\ndatabase_url = "{fleet_db_url}"\n')
    return path


async def test_a_change_stamped_by_a_lagging_clock_still_reaches_a_running_core(
    fleet_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI runs on a host whose clock is a minute behind the core's (or NTP stepped it
    back): the token it blocks and the certificate it revokes carry older revisions than the
    core has already read, and must still be applied."""
    store = await FleetStore.open(fleet_db_url)
    records = EquipmentStore(store.engine)
    equipment = Equipment.from_config(CsmsConfig(id_token_policy="token_list"), records=records)
    sync = EquipmentSync(equipment, records)
    token = {"id_token": "A", "type": "ISO14443"}
    try:
        await records.put_token(IdTokenRecord("A", "ISO14443", "Accepted"), now=T0)
        await sync.refresh()
        assert equipment.tokens.authorize(token, now=T0)["status"] == "Accepted"
        behind_ns = time.time_ns() - 60 * 10**9
        monkeypatch.setattr(fleet_equipment, "time", SimpleNamespace(time_ns=lambda: behind_ns))
        await records.put_token(IdTokenRecord("A", "ISO14443", "Blocked"), now=T0)
        revoked = CertificateRecord("0a", "CS-1", revoked_at=T0, revocation_reason="keyCompromise")
        await records.put_certificates([revoked])
        monkeypatch.undo()
        await sync.refresh()
        assert equipment.tokens.authorize(token, now=T0)["status"] == "Blocked"
        refusal = equipment.certificates.refusal("CS-1", PeerCertificate("0a", None))
        assert refusal is not None
        assert "keyCompromise" in refusal
    finally:
        await store.close()


def test_equipment_cli(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ["--config", str(config)]
    add = ["tokens", "add", "04A2B3C4", "--type", "ISO14443", "--group", "FLEET"]
    assert main([*add, "--expires", "2027-01-01T00:00:00Z", *cfg]) == 0
    assert main(["tokens", "block", "04A2B3C4", "--type", "ISO14443", *cfg]) == 0
    assert main(["tokens", "block", "nobody", "--type", "ISO14443", *cfg]) == 1
    assert "no token" in capsys.readouterr().err
    assert main(["tokens", "list", "--json", *cfg]) == 0
    [token] = json.loads(capsys.readouterr().out)
    assert (token["status"], token["group_id"]) == ("Blocked", "FLEET")
    assert token["expires_at"].startswith("2027-01-01T00:00:00")
    assert main(["tokens", "remove", "04A2B3C4", "--type", "ISO14443", *cfg]) == 0
    assert main(["tokens", "list", *cfg]) == 0
    assert "Invalid" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["tokens", "add", "X", "--type", "T", "--expires", "2027-01-01T00:00:00", *cfg])
    capsys.readouterr()
    assert (
        main(["certificates", "revoke", "00AB", "--station", "CS-1", "--reason", "lost", *cfg]) == 0
    )
    assert main(["certificates", "revoke", "ab", "--station", "CS-2", *cfg]) == 1
    assert "belongs to 'CS-1'" in capsys.readouterr().err
    assert main(["certificates", "list", "--json", *cfg]) == 0
    [cert] = json.loads(capsys.readouterr().out)
    assert (cert["serial"], cert["station_id"], cert["revocation_reason"]) == ("ab", "CS-1", "lost")
    assert main(["device-model", "CS-1", "--json", *cfg]) == 0
    assert json.loads(capsys.readouterr().out) == []
