"""``[ingest]``: the core's MQTT-TLS subscriber for regional telemetry."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from v2g_common.config import ConfigSection

__all__ = ["IngestConfig"]


class IngestConfig(ConfigSection):
    """Keys of the ``[ingest]`` section (``etc/core.toml`` documents each)."""

    broker_host: str
    broker_port: int = Field(default=8883, ge=1, le=65535)
    ca_file: Path
    cert_file: Path = Field(description="the core's client certificate (CN = core)")
    key_file: Path
    client_id: str = "vpp-core-ingest"
    keepalive_s: int = Field(default=30, ge=5, le=65535)
    session_expiry_s: int = Field(
        default=604_800, ge=0, description="the broker keeps our subscription and queue this long"
    )
    receive_maximum: int = Field(
        default=1000, ge=1, le=65535, description="unacknowledged messages the broker may send us"
    )
    batch_max: int = Field(default=500, ge=1, description="messages written per store transaction")
    batch_linger_s: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="wait this long after a message for more to share its transaction "
        "(adds at most this to the latency; cuts the ingest's CPU per message ~10x at 1,000/s)",
    )
    stale_after_s: float = Field(
        default=35.0,
        gt=0,
        description="a site whose last summary is older is not counted as available",
    )
    store_retry_max_s: float = Field(default=30.0, gt=0)
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=30, ge=1)
