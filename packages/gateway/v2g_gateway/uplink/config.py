"""``[uplink]``: the site's MQTT-TLS telemetry publisher and its on-disk outbox."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from v2g_common.config import ConfigSection
from v2g_common.telemetry import TopicError, check_segment

__all__ = ["UplinkConfig"]


class UplinkConfig(ConfigSection):
    """Keys of the ``[uplink]`` section (``etc/gateway.toml`` documents each)."""

    site: str = Field(description="site id = CN of the client certificate = MQTT user")
    region: str
    broker_host: str
    broker_port: int = Field(default=8883, ge=1, le=65535)
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_id: str | None = Field(default=None, description="MQTT client id; default: the site id")
    summary_interval_s: float = Field(default=10.0, gt=0, le=3600)
    charger_read_timeout_s: float = Field(default=2.0, gt=0)
    chargers: tuple[str, ...] = Field(
        default=(),
        description="collector mode: ids of the chargers summarized together (from the "
        "deployment's charger list); empty = this gateway's own charger",
    )
    outbox_path: Path = Path("/var/lib/v2g-gateway/uplink-outbox.sqlite3")
    outbox_max_messages: int = Field(default=50_000, ge=10)
    outbox_fsync: bool = Field(default=True, description="fsync each write (survives power loss)")
    max_inflight: int = Field(default=20, ge=1, le=1000)
    keepalive_s: int = Field(default=30, ge=5, le=65535)
    session_expiry_s: int = Field(default=86_400, ge=0)
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=60, ge=1)

    @field_validator("site", "region")
    @classmethod
    def _topic_segment(cls, value: str) -> str:
        try:
            return check_segment(value, what="value")
        except TopicError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("chargers")
    @classmethod
    def _unique_chargers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("charger ids must be unique")
        return value

    @model_validator(mode="after")
    def _reconnect_order(self) -> UplinkConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self
