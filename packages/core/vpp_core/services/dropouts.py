"""Which sessions of a held service no longer hold their share, and why (pure).

A share is lost when its transaction ended, its EV or station went offline, it left every
dispatch (priority charging), its station refused the profile or the command failed: the
re-plan moves that capacity to the sessions that remain (``vpp_core.services.manager``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.ports import SessionState
from vpp_core.services.allocation import SessionShare

__all__ = ["lost_shares"]


def _reason(session: SessionState | None, answer: str | None) -> str | None:
    if answer is not None and answer != "Accepted":
        return f"profile not accepted ({answer})"
    if session is None:
        return "transaction ended"
    if not session.connected:
        return "not connected (station offline or EV unplugged)"
    return session.not_dispatchable or session.charge_only


def lost_shares(
    shares: Iterable[SessionShare],
    sent: Mapping[SessionKey, str],
    sessions: Iterable[SessionState],
) -> dict[SessionKey, str]:
    """Key -> reason for every share in ``shares`` that is no longer held (``sent``: the
    stations' answers so far; a share not yet sent is not lost)."""
    live = {s.key: s for s in sessions}
    lost = {}
    for share in shares:
        if share.key not in sent:
            continue
        reason = _reason(live.get(share.key), sent[share.key])
        if reason is not None:
            lost[share.key] = reason
    return lost
