"""``etc/core.toml`` as one model: each subsystem's section, composed.

Sections: ``[csms]`` (vpp_core.csms.config), ``[fleet]`` (vpp_core.fleet.config),
``[metrics]`` and ``[runtime]`` (here: they concern the process, not a subsystem),
``[cluster]`` (vpp_core.cluster.config).
Other subsystems add their sections here as they join the core.
"""

from __future__ import annotations

from pydantic import Field

from v2g_common.config import ConfigSection
from vpp_core.api.config import ApiConfig
from vpp_core.cluster.config import ClusterConfig
from vpp_core.csms.config import CsmsConfig
from vpp_core.dispatch.config import DispatchConfig
from vpp_core.fleet.config import FleetConfig
from vpp_core.ingest.config import IngestConfig

__all__ = ["CoreConfig", "MetricsConfig", "RuntimeConfig"]


class MetricsConfig(ConfigSection):
    """Prometheus exposition (``/metrics``); ``port = 0`` disables it."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class RuntimeConfig(ConfigSection):
    """Garbage-collector policy (``vpp_core.heap``): with ~10k connections a collection
    that walks the fleet's long-lived objects pauses every station. Freezing what survived
    keeps collections short; a maintenance collection reclaims frozen cycles, outside
    dispatches (benchmarks/csms_load.py and dispatch_fanout.py measure the pauses)."""

    gc_freeze_after_start: bool = True
    gc_gen0_threshold: int = Field(default=50_000, ge=100)
    gc_gen1_threshold: int = Field(default=20, ge=1)
    gc_gen2_threshold: int = Field(default=100, ge=1)
    gc_freeze_interval_s: float = Field(default=30.0, ge=0)  # 0 = only at start
    gc_full_collect_interval_s: float = Field(default=3600.0, ge=0)  # 0 = never
    gc_full_collect_max_defer_s: float = Field(default=1800.0, ge=0)


class CoreConfig(ConfigSection):
    csms: CsmsConfig = CsmsConfig()
    fleet: FleetConfig = FleetConfig()
    metrics: MetricsConfig = MetricsConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    dispatch: DispatchConfig = DispatchConfig()
    #: The grid operator's HTTP API; absent = no API (an OCPP-only core).
    api: ApiConfig | None = None
    #: MQTT-TLS telemetry ingest and dispatch-report publishing; absent = no broker.
    ingest: IngestConfig | None = None
    #: The role in a cluster (docs/cluster.md); ``embedded`` (default): no cluster.
    cluster: ClusterConfig = ClusterConfig()
