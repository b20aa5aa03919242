"""Profile conflicts: installed profiles that would mask the VPP's (pure).

OCPP: within a purpose the highest stackLevel wins, so a TxProfile above the VPP's level masks
it; one at the same level with another id would be replaced by ours, overriding another system.
Either way the session is excluded and the operator settles stackLevel priority with the site.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from vpp_core.dispatch.model import SessionKey
from vpp_core.dispatch.profiles import PURPOSE

__all__ = ["masking_reason"]


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _applies(profile: Mapping[str, Any], key: SessionKey, window_start: datetime) -> bool:
    evse = profile.get("evse_id")
    if evse is not None and evse != key.evse_id:
        return False
    tx = profile.get("transaction_id")
    if tx is not None and tx != key.transaction_id:
        return False
    valid_to = _parse(profile.get("valid_to"))
    return valid_to is None or valid_to > window_start


def masking_reason(
    installed: Sequence[Mapping[str, Any]],
    key: SessionKey,
    *,
    stack_level: int,
    own_profile_id: int,
    window_start: datetime,
) -> str | None:
    """Why the VPP profile for ``key`` would not take effect, or None.

    Profiles without ``evse_id`` (not every CSMS reports it) are taken to cover every EVSE.
    """
    for p in installed:
        purpose = p.get("charging_profile_purpose", PURPOSE)
        if (
            purpose != PURPOSE
            or p.get("id") == own_profile_id
            or not _applies(p, key, window_start)
        ):
            continue
        level = int(p.get("stack_level", -1))
        if level > stack_level:
            return (
                f"profile conflict: TxProfile id {p.get('id')} at stackLevel {level} masks the "
                f"VPP's stackLevel {stack_level}; settle stackLevel priority with the site"
            )
        if level == stack_level:
            return (
                f"profile conflict: TxProfile id {p.get('id')} already holds stackLevel {level}; "
                "sending ours would replace another system's profile"
            )
    return None
