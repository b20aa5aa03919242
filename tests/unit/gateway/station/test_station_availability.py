"""ChangeAvailability on the station (G03 EVSE, G04 station): Accepted when in effect now,
Scheduled while a transaction runs on an EVSE going inoperative, persisted across a restart."""

from __future__ import annotations

from pathlib import Path

from v2g_gateway.station.availability import Availability
from v2g_gateway.station.outbox import TransactionJournal
from v2g_gateway.station.store import open_state_db


def availability(tmp_path: Path) -> Availability:
    return Availability(TransactionJournal(open_state_db(tmp_path)), [1, 2])


def test_evse_goes_inoperative_at_once_when_idle(tmp_path: Path) -> None:
    a = availability(tmp_path)
    assert a.request(False, 1, busy=set()) == "Accepted"
    assert (a.operative(1), a.operative(2)) == (False, True)
    assert a.request(True, 1, busy=set()) == "Accepted"
    assert a.operative(1)


def test_busy_evse_is_scheduled_until_its_transaction_ends(tmp_path: Path) -> None:
    a = availability(tmp_path)
    assert a.request(False, 1, busy={1}) == "Scheduled"
    assert a.operative(1)  # still in effect while its transaction runs
    assert a.settle(busy={1}) == []
    assert a.settle(busy=set()) == [1]
    assert not a.operative(1)


def test_station_inoperative_takes_idle_evses_now_and_busy_ones_later(tmp_path: Path) -> None:
    a = availability(tmp_path)
    assert a.request(False, None, busy={2}) == "Scheduled"
    assert (a.operative(1), a.operative(2)) == (False, True)
    a.settle(busy=set())
    assert (a.operative(1), a.operative(2)) == (False, False)
    # The station back to operative: an EVSE set inoperative on its own stays so.
    a.request(False, 1, busy=set())
    assert a.request(True, None, busy=set()) == "Accepted"
    assert (a.operative(1), a.operative(2)) == (False, True)


def test_unknown_evse_is_rejected(tmp_path: Path) -> None:
    assert availability(tmp_path).request(False, 7, busy=set()) == "Rejected"


def test_requested_state_survives_a_restart(tmp_path: Path) -> None:
    a = availability(tmp_path)
    a.request(False, 2, busy={2})
    reopened = availability(tmp_path)
    assert (reopened.operative(1), reopened.operative(2)) == (True, False)
