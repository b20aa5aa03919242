"""The CSMS's idToken policy (C01 Authorize, and the idToken of a TransactionEvent).

``accept_all``: every idToken is Accepted (sites that authorize locally, or where anyone
plugged in may charge); ``token_list``: the tokens listed with ``vpp-core tokens`` decide,
an unlisted one is Unknown. A listed token answers with its status (Blocked, Expired,
Invalid), Expired also once its ``expires_at`` passed, and Accepted with its group and expiry.
A station that starts transactions without an idToken sends type ``NoAuthorization``: always
Accepted. Pure: time is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from vpp_core.fleet.equipment import IdTokenRecord

__all__ = ["IdTokenPolicy", "TokenPolicyName"]

TokenPolicyName = Literal["accept_all", "token_list"]


class IdTokenPolicy:
    """Answers ``idTokenInfo`` for an ``idToken`` (snake_case dicts)."""

    def __init__(self, policy: TokenPolicyName, tokens: Iterable[IdTokenRecord] = ()) -> None:
        self.policy = policy
        self._tokens: dict[tuple[str, str], IdTokenRecord] = {}
        self.update(tokens)

    def update(self, tokens: Iterable[IdTokenRecord]) -> None:
        """Apply added or changed tokens (the list is re-read while running)."""
        for token in tokens:
            self._tokens[(token.id_token, token.token_type)] = token

    def __len__(self) -> int:
        return len(self._tokens)

    def authorize(self, id_token: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
        """``idTokenInfo`` for ``id_token`` ({id_token, type})."""
        if self.policy == "accept_all" or id_token.get("type") == "NoAuthorization":
            return {"status": "Accepted"}
        record = self._tokens.get((str(id_token["id_token"]), str(id_token["type"])))
        if record is None:
            return {"status": "Unknown"}
        if record.expires_at is not None and record.expires_at <= now:
            return {"status": "Expired"}
        if record.status != "Accepted":
            return {"status": record.status}
        info: dict[str, Any] = {"status": "Accepted"}
        if record.expires_at is not None:
            info["cache_expiry_date_time"] = record.expires_at.isoformat()
        if record.group_id is not None:
            info["group_id_token"] = {"id_token": record.group_id, "type": "Central"}
        return info
