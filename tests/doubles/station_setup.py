"""Station configuration for tests: short timings so scenarios run in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from v2g_gateway.station.config import ReconnectConfig, StationConfig

PASSWORD = "station-password-0001"


def station_config(url: str, state_dir: Path, **overrides: Any) -> StationConfig:
    """Short timings so the tests run in seconds."""
    values: dict[str, Any] = {
        "csms_url": url,
        "identity": "CS-0001",
        "security_profile": 1,
        "password": PASSWORD,
        "state_dir": state_dir,
        "sampled_data_interval_s": 0.5,
        "control_tick_s": 0.1,
        "lease_valid_for_s": 1.0,
        "contact_probe_interval_s": 1.0,
        "response_timeout_s": 3.0,
        "reconnect": ReconnectConfig(initial_s=0.05, max_s=0.3, jitter=0.2),
        "ws_ping_interval_s": 1.0,
        "ws_ping_timeout_s": 1.0,
    }
    values.update(overrides)
    return StationConfig(**values)
