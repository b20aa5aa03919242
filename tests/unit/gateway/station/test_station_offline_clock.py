"""maxOfflineDuration on an injected clock (K01, OCPP 2.1 ``maxOfflineDuration``): the
station never reaches its CSMS here (nothing listens), so it is offline from the last contact
it persisted; the VPP profile applies up to exactly that plus maxOfflineDuration, across a
restart, and a wall clock set back does not revive it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.doubles.scripted_control import ScriptedControl, ScriptedEvLink
from v2g_gateway.station import ChargingStation, StationConfig
from v2g_gateway.station.composite import ActiveTransaction
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.smart_charging import SmartCharging
from v2g_gateway.station.store import ProfileStore, open_state_db

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.wall = now
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def prepare_state(config: StationConfig) -> None:
    """A transaction in progress, a 0 W default and a -7 kW VPP profile (30 s offline), and
    a last CSMS contact at T0 - as a station that just lost its link would leave them."""
    db = open_state_db(config.state_dir)
    journal = TransactionJournal(db)
    journal.begin(1, "tx-1", T0 - timedelta(minutes=5))
    journal.put("last_csms_contact", T0.isoformat())
    smart = SmartCharging(config, ProfileStore(db), may_discharge=lambda _evse: True)
    running = {1: ActiveTransaction("tx-1", T0 - timedelta(minutes=5))}
    default = {
        "id": 1,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": [
            {
                "id": 1,
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 0.0}],
            }
        ],
    }
    vpp = {
        "id": 50,
        "stack_level": 50,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": "tx-1",
        "max_offline_duration": 30,
        "valid_from": (T0 - timedelta(minutes=1)).isoformat(),
        "charging_schedule": [
            {
                "id": 50,
                "charging_rate_unit": "W",
                "start_schedule": T0.isoformat(),
                "charging_schedule_period": [
                    {"start_period": 0, "operation_mode": "CentralSetpoint", "setpoint": -7000.0}
                ],
            }
        ],
    }
    smart.install(0, default, transactions=running, now=T0)
    smart.install(1, vpp, transactions=running, now=T0)
    db.close()


async def test_vpp_profile_applies_until_max_offline_duration(tmp_path: Path) -> None:
    config = StationConfig(
        csms_url="ws://127.0.0.1:9/ocpp",
        identity="CS-1",
        security_profile=1,
        password="p" * 16,
        state_dir=tmp_path,
        control_tick_s=3600.0,
        lease_valid_for_s=7200.0,
    )
    prepare_state(config)
    control = ScriptedControl()
    control.plug_in()
    clock = FakeClock(T0 + timedelta(seconds=29.9))
    async with ChargingStation(
        config, control=control, ev_link=ScriptedEvLink(control), clock=clock
    ) as station:
        await station.tick()
        assert control.leases[-1].power_w == -7000.0
        clock.advance(0.1)  # exactly T0 + 30 s
        await station.tick()
        assert control.leases[-1].power_w == 0.0
        assert control.contacts == 0
    # A restart does not restart the offline clock.
    async with ChargingStation(
        config, control=control, ev_link=ScriptedEvLink(control), clock=clock
    ) as station:
        await station.tick()
        assert control.leases[-1].power_w == 0.0
        since = station.offline_since()
        assert since is not None
        assert abs((since - T0).total_seconds()) < 1e-3


async def test_contact_in_the_future_counts_as_now(tmp_path: Path) -> None:
    """No RTC and no NTP yet: the wall clock reads earlier than the persisted last contact.
    The outage then counts from now, so the profile still stops maxOfflineDuration later."""
    config = StationConfig(
        csms_url="ws://127.0.0.1:9/ocpp",
        identity="CS-1",
        security_profile=1,
        password="p" * 16,
        state_dir=tmp_path,
        control_tick_s=3600.0,
        lease_valid_for_s=7200.0,
    )
    prepare_state(config)
    clock = FakeClock(T0 - timedelta(seconds=20))
    async with ChargingStation(config, control=ScriptedControl(), clock=clock) as station:
        assert station.offline_since() == clock.wall
        clock.wall += timedelta(hours=2)  # NTP steps the wall clock: the outage is not older
        since = station.offline_since()
        assert since is not None
        assert since == clock.wall
