"""Which shares of a held service are lost, and why (a table of cases)."""

from __future__ import annotations

import pytest

from tests.unit.core.services.test_allocation import state
from vpp_core.services.allocation import SessionShare
from vpp_core.services.dropouts import lost_shares

CASES = [
    # (session changes or None = gone, station's answer or None = not sent, expected reason)
    ({}, "Accepted", None),
    ({}, None, None),
    (None, "Accepted", "transaction ended"),
    ({"connected": False}, "Accepted", "not connected (station offline or EV unplugged)"),
    (
        {"priority_charging": True},
        "Accepted",
        "priority charging requested by the EV (NotifyPriorityCharging)",
    ),
    (
        {"allowed_energy_transfer": ("DC",)},
        "Accepted",
        "NotifyAllowedEnergyTransfer allowed no bidirectional mode (DC): charge-only",
    ),
    ({}, "Rejected: NotSupported", "profile not accepted (Rejected: NotSupported)"),
    ({}, "error: TimeoutError: ", "profile not accepted (error: TimeoutError: )"),
]


@pytest.mark.parametrize(("changes", "answer", "reason"), CASES)
def test_lost_shares(
    changes: dict[str, object] | None, answer: str | None, reason: str | None
) -> None:
    session = state(0, **(changes or {}))
    share = SessionShare(session.key, 5_000.0, 5_000.0)
    sent = {} if answer is None else {session.key: answer}
    sessions = [] if changes is None else [session]
    expected = {} if reason is None else {session.key: reason}
    assert lost_shares([share], sent, sessions) == expected
