"""``etc/core.toml`` documents every key of the sections this package and fleet declare, and
loads; inconsistent TLS settings are refused."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from v2g_common.config import ConfigError, load_config, parse_config
from vpp_core.config import CoreConfig
from vpp_core.csms import CsmsConfig

SAMPLE = Path(__file__).resolve().parents[4] / "etc" / "core.toml"
SECTIONS = ("csms", "fleet", "metrics", "runtime", "dispatch", "api", "ingest")


def _commented_keys(text: str) -> dict[str, set[str]]:
    """Keys shown as ``# key = value`` lines per section: settings off by default that TOML
    cannot write as unset (no null), documented with an example value."""
    keys: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        if header := re.fullmatch(r"\[(\w+)\].*", line):
            section = header.group(1)
        elif example := re.fullmatch(r"# (\w+) = \S.*", line):
            keys.setdefault(section, set()).add(example.group(1))
    return keys


def test_sample_config_loads_and_lists_every_key() -> None:
    config = load_config(CoreConfig, SAMPLE)
    assert config.csms.tls
    text = SAMPLE.read_text()
    raw = tomllib.loads(text)
    commented = _commented_keys(text)
    for section in SECTIONS:
        model = type(getattr(config, section))
        listed = set(raw[section]) | commented.get(section, set())
        assert listed == set(model.model_fields), section
    # Off unless configured: a fresh install needs no CA key on the core.
    assert config.csms.ca_key_file is None
    assert commented["csms"] >= {"ca_cert_file", "ca_key_file"}


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


@pytest.mark.parametrize("value", [0, -5, "many"])
def test_a_bad_opening_bound_names_its_key(value: object) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(CoreConfig, {"csms": {"max_opening_connections": value}}, source="core.toml")
    assert refused.value.problems[0][0] == "csms.max_opening_connections"
