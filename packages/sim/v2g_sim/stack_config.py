"""The TOML files the demo's stack writes: one ``core.toml`` and one ``gateway.toml`` per
simulated charger. They are ordinary configuration files (the README tutorial points at
them as examples of a gateway wired to a core); only the timers are shortened for the demo.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from v2g_common.pki import PkiLayout

if TYPE_CHECKING:
    from v2g_sim.demo_stack import StackSettings

__all__ = ["core_toml", "gateway_toml"]


def _q(value: object) -> str:
    """A TOML basic string (paths and ids here contain no quotes or backslashes)."""
    text = str(value)
    if '"' in text or "\\" in text:
        raise ValueError(f"cannot quote {text!r} for TOML")
    return f'"{text}"'


def core_toml(
    settings: StackSettings,
    *,
    pki: PkiLayout,
    state_dir: Path,
    csms_port: int,
    api_port: int,
    broker_port: int,
    token_file: Path,
) -> str:
    """``vpp-core`` on loopback: CSMS with mutual TLS, fleet database (SQLite unless
    ``settings.database_url``), API, ingest, dispatch."""
    return f"""# written by vpp-demo: the central core on embedded defaults
[csms]
host = "127.0.0.1"
port = {csms_port}
tls_cert_file = {_q(pki.server_cert("csms"))}
tls_key_file = {_q(pki.server_key("csms"))}
tls_client_ca_file = {_q(pki.ca_cert)}
subprotocols = ["ocpp2.1"]
command_timeout_s = 10.0
heartbeat_interval_s = 60

[fleet]
database_url = {_q(settings.database_url or f"sqlite:///{state_dir / 'fleet.db'}")}
registry_refresh_s = 2.0

[metrics]
port = 0

[api]
host = "127.0.0.1"
port = {api_port}
bearer_token_file = {_q(token_file)}

[ingest]
broker_host = "127.0.0.1"
broker_port = {broker_port}
ca_file = {_q(pki.ca_cert)}
cert_file = {_q(pki.client_cert("core"))}
key_file = {_q(pki.client_key("core"))}
stale_after_s = {settings.summary_interval_s * 3 + 5}

[dispatch]
max_offline_duration_s = {settings.max_offline_duration_s}
control_period_s = {settings.dispatch_control_period_s}
command_timeout_s = 10.0
# the demo's window is short: re-plan and catch up on its time scale
ramp_in_s = 10.0
catch_up_horizon_s = 30.0
under_delivery_grace_s = 15.0
stale_after_s = {settings.sampled_data_interval_s * 5 + 5}
resume_after_restart = {"true" if settings.resume_after_restart else "false"}
"""


def gateway_toml(
    settings: StackSettings,
    *,
    pki: PkiLayout,
    station_id: str,
    region: str,
    csms_url: str,
    broker_port: int,
    sim_socket: Path,
    device_id: int,
    state_dir: Path,
) -> str:
    """One simulated charger's ``gateway.toml`` (security profile 3, own site)."""
    return f"""# written by vpp-demo: one edge gateway with a simulated module and EV
[daemon]
log_level = {_q(settings.log_level)}

[control]
period_s = {settings.control_period_s}
comms_loss_timeout_s = {settings.comms_loss_timeout_s}
rearm_delay_s = 2.0

[power_sensor]
kind = "simulated"

[contactor]
kind = "simulated"

[simulator]
socket = {_q(sim_socket)}
device_id = {device_id}

[ev_link]
kind = "simulated"

[station]
csms_url = {_q(csms_url)}
identity = {_q(station_id)}
security_profile = 3
ca_cert = {_q(pki.ca_cert)}
client_cert = {_q(pki.client_cert(station_id))}
client_key = {_q(pki.client_key(station_id))}
sampled_data_interval_s = {settings.sampled_data_interval_s}
contact_probe_interval_s = {settings.contact_probe_interval_s}
state_dir = {_q(state_dir)}
# vehicles wait idle until dispatched (the window then starts from 0 kW, not from charging)
default_charge_w = 0.0

[station.reconnect]
initial_s = 0.5
max_s = 3.0

[uplink]
site = {_q(station_id)}
region = {_q(region)}
broker_host = "127.0.0.1"
broker_port = {broker_port}
ca_file = {_q(pki.ca_cert)}
cert_file = {_q(pki.client_cert(station_id))}
key_file = {_q(pki.client_key(station_id))}
summary_interval_s = {settings.summary_interval_s}
outbox_path = {_q(state_dir / "uplink-outbox.sqlite3")}
outbox_fsync = false
reconnect_max_s = 5
""" + _frequency_log(settings, state_dir)


def _frequency_log(settings: StackSettings, state_dir: Path) -> str:
    """``[frequency_log]`` when the settings ask for it (frequency-response tests): the
    activation files under the gateway's state directory, ended ``after_s`` past the last
    excursion (15 min in the field)."""
    if settings.frequency_log_after_s is None:
        return ""
    return f"""
[frequency_log]
enabled = true
directory = {_q(state_dir / "activations")}
after_s = {settings.frequency_log_after_s}
"""
