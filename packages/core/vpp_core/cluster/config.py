"""``[cluster]``: which role this ``vpp-core`` plays (docs/cluster.md).

``embedded`` (the default) is the single process of today: CSMS, fleet, dispatch and API in
one, no bus. ``csms`` and ``coordinator`` are the two roles of a cluster that share a NATS
server with JetStream and one PostgreSQL database (:func:`cluster_problems` checks the
settings of other sections a role needs, naming their keys).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from v2g_common.config import ConfigSection

__all__ = ["ClusterConfig", "cluster_problems"]

Role = Literal["embedded", "csms", "coordinator"]
_NODE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ClusterConfig(ConfigSection):
    role: Role = "embedded"
    #: The NATS server (JetStream enabled), e.g. ``nats://127.0.0.1:4222``.
    nats_url: str | None = None
    #: This node's name, unique in the cluster (a NATS subject token: letters, digits, _ -).
    node_id: str | None = None
    #: Coordinator lease (PostgreSQL advisory lock): the active checks it holds the lock every
    #: lease_ttl_s / 3 and steps down (exits) when it cannot; PostgreSQL releases the lock of
    #: a coordinator whose host vanished within about lease_ttl_s (TCP keepalives), of a dead
    #: process at once. A standby tries to take it every lease_ttl_s / 6.
    lease_ttl_s: float = Field(default=3.0, ge=0.5, le=60.0)
    #: A CSMS node not heard from (heartbeat every node_timeout_s / 5) for this long is dead:
    #: coordinators mark its stations disconnected until they reconnect elsewhere.
    node_timeout_s: float = Field(default=5.0, ge=1.0, le=120.0)
    #: A coordinator starts from the database's fleet and replays this much of the event
    #: stream on top (the write-behind lags the stream by about [fleet] write_interval_s).
    replay_s: float = Field(default=60.0, ge=1.0)
    #: JetStream keeps fleet events this long (a coordinator down longer restarts from the DB).
    stream_max_age_s: float = Field(default=86_400.0, ge=60.0)
    #: Fleet events a CSMS node holds while NATS is unreachable; beyond it the oldest go
    #: (counted in vpp_cluster_events_dropped_total): registers are cumulative, the next
    #: report restores the live values, and the database has every row.
    outbox_max_events: int = Field(default=200_000, ge=1000)
    #: CSMS node health endpoint for HAProxy (GET /health: 200 serving, 503 not); 0 = none.
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=0, ge=0, le=65535)

    @model_validator(mode="after")
    def _role_needs(self) -> ClusterConfig:
        if self.role == "embedded":
            return self
        if not self.nats_url:
            raise ValueError(f"role {self.role!r} needs cluster.nats_url (nats://host:port)")
        if not self.node_id or not _NODE_ID.fullmatch(self.node_id):
            raise ValueError(
                f"role {self.role!r} needs cluster.node_id: 1-64 letters, digits, _ or -"
                f" (got {self.node_id!r})"
            )
        return self


def cluster_problems(
    cluster: ClusterConfig, *, database_url: str, has_api: bool
) -> list[tuple[str, str]]:
    """What other sections lack for this role, as ``(dotted key, reason)``."""
    if cluster.role == "embedded":
        return []
    problems = []
    if not database_url.startswith(("postgresql", "postgres://")):
        problems.append(
            (
                "fleet.database_url",
                f"cluster role {cluster.role!r} needs PostgreSQL (postgresql://…): every node"
                " shares one database",
            )
        )
    if cluster.role == "coordinator" and not has_api:
        problems.append(("api", "cluster role 'coordinator' serves the API: add [api]"))
    return problems
