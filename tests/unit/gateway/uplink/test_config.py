"""``[uplink]`` config: defaults, units, clear errors."""

from __future__ import annotations

import pytest

from v2g_common.config import ConfigError, parse_config
from v2g_gateway.uplink import UplinkConfig

BASE = {
    "site": "site-a",
    "region": "north",
    "broker_host": "mqtt.example.net",
    "ca_file": "/etc/v2g/pki/ca.pem",
    "cert_file": "/etc/v2g/pki/clients/site-a.pem",
    "key_file": "/etc/v2g/pki/clients/site-a.key",
}


def test_defaults() -> None:
    cfg = parse_config(UplinkConfig, dict(BASE), source="t")
    assert (cfg.broker_port, cfg.summary_interval_s, cfg.max_inflight) == (8883, 10.0, 20)
    assert cfg.outbox_max_messages == 50_000
    assert cfg.outbox_fsync


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"site": "site/a"}, "site"),
        ({"region": "+"}, "region"),
        ({"summary_interval_s": 0}, "summary_interval_s"),
        ({"outbox_max_messages": 5}, "outbox_max_messages"),
        ({"chargers": ["cp-1", "cp-1"]}, "chargers"),
        ({"summary_interval": 5}, "summary_interval"),
    ],
)
def test_bad_values_name_the_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(UplinkConfig, {**BASE, **change}, source="gateway.toml")
    assert key in str(err.value)
