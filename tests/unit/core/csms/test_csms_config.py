"""``etc/core.toml`` documents every key of the sections this package and fleet declare, and
loads; inconsistent TLS settings are refused."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from v2g_common.config import load_config
from vpp_core.config import CoreConfig
from vpp_core.csms import CsmsConfig

SAMPLE = Path(__file__).resolve().parents[4] / "etc" / "core.toml"
SECTIONS = ("csms", "fleet", "metrics", "runtime", "dispatch", "api", "ingest")


def test_sample_config_loads_and_lists_every_key() -> None:
    config = load_config(CoreConfig, SAMPLE)
    assert config.csms.tls
    raw = tomllib.loads(SAMPLE.read_text())
    for section in SECTIONS:
        model = type(getattr(config, section))
        assert set(raw[section]) == set(model.model_fields), section


@pytest.mark.parametrize(
    "values",
    [
        {"tls_cert_file": "/x.pem"},  # key missing
        {"tls_client_ca_file": "/ca.pem"},  # client CA without a server certificate
        {"port": 70000},
        {"subprotocols": ["ocpp1.6"]},
        {"max_frame_bytes": 100},
        {"ca_cert_file": "/ca.pem"},  # signing CA without its key
        {"id_token_policy": "accept_some"},
    ],
)
def test_bad_csms_settings_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CsmsConfig.model_validate(values)
