"""The station's settings the CSMS may change at run time through its device model
(SetVariables), seeded from ``[station]`` in gateway.toml. The link, the transaction trackers
and the certificate renewal read them here rather than from the frozen config."""

from __future__ import annotations

from dataclasses import dataclass

from v2g_gateway.station.config import StationConfig

__all__ = ["StationSettings"]


@dataclass(slots=True)
class StationSettings:
    """Mutable, owned by the station's event loop."""

    heartbeat_interval_s: float
    sampled_data_interval_s: float
    transaction_message_attempts: int
    transaction_message_retry_interval_s: float
    ws_ping_interval_s: float
    ev_connection_timeout_s: float
    cert_signing_wait_minimum_s: float
    cert_signing_repeat_times: int

    @classmethod
    def from_config(cls, config: StationConfig) -> StationSettings:
        return cls(
            heartbeat_interval_s=config.heartbeat_interval_s,
            sampled_data_interval_s=config.sampled_data_interval_s,
            transaction_message_attempts=config.transaction_message_attempts,
            transaction_message_retry_interval_s=config.transaction_message_retry_interval_s,
            ws_ping_interval_s=config.ws_ping_interval_s,
            ev_connection_timeout_s=config.ev_connection_timeout_s,
            cert_signing_wait_minimum_s=config.cert_signing_wait_minimum_s,
            cert_signing_repeat_times=config.cert_signing_repeat_times,
        )
