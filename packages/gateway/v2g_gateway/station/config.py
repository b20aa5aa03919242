"""The ``[station]`` configuration section: how the edge charging station reaches its CSMS,
which EVSEs it has, how often it samples, and how it behaves offline."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from v2g_common.config import ConfigSection

__all__ = ["EvseConfig", "ReconnectConfig", "StationConfig"]


class EvseConfig(ConfigSection):
    """One EVSE (with one connector) of the station."""

    id: int = Field(ge=1)
    connector_id: int = Field(default=1, ge=1)
    #: Phase-to-neutral voltage used to turn ampere schedules into watts.
    nominal_voltage_v: float = Field(default=230.0, gt=0)
    #: Phases the EVSE can use; an ampere limit without ``numberPhases`` assumes this many.
    phases: int = Field(default=3, ge=1, le=3)
    #: "DC" (ISO 15118-20 DC_BPT) or "AC" (AC_BPT): what NotifyEVChargingNeeds requests.
    current_type: Literal["AC", "DC"] = "DC"
    #: The EVSE's rated power, both directions: the local limit of its composite schedule
    #: (device model: EVSE.Power maxLimit).
    max_power_w: float = Field(default=22_000.0, gt=0)


class ReconnectConfig(ConfigSection):
    """Exponential backoff with full jitter between connection attempts."""

    initial_s: float = Field(default=1.0, gt=0)
    max_s: float = Field(default=60.0, gt=0)
    factor: float = Field(default=2.0, ge=1.0)
    jitter: float = Field(default=0.5, ge=0.0, le=1.0)


class StationConfig(ConfigSection):
    """Everything the OCPP charging-station role needs (``[station]`` in gateway.toml)."""

    csms_url: str
    identity: str = Field(min_length=1, max_length=48, pattern=r"^[^:]+$")
    #: 1 = Basic auth without TLS (tests and labs only), 2 = TLS + Basic auth, 3 = mutual TLS.
    security_profile: Literal[1, 2, 3] = 2
    password: str | None = Field(default=None, min_length=16, max_length=40)
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    #: Offered in order; add "ocpp2.0.1" to let a 2.0.1-only CSMS fall back.
    subprotocols: tuple[Literal["ocpp2.1", "ocpp2.0.1"], ...] = ("ocpp2.1",)
    vendor_name: str = "v2g-vpp"
    model: str = "v2g-gateway"
    serial_number: str | None = None
    firmware_version: str | None = None
    open_timeout_s: float = Field(default=10.0, gt=0)
    response_timeout_s: float = Field(default=30.0, gt=0)
    #: Used until the CSMS's BootNotification answer gives its own interval.
    heartbeat_interval_s: float = Field(default=300.0, gt=0)
    #: With nothing else exchanged for this long a Heartbeat is sent anyway, so the control
    #: loop's comms-loss timer (fed only by real exchanges) does not trip on a quiet link.
    contact_probe_interval_s: float = Field(default=10.0, gt=0)
    sampled_data_interval_s: float = Field(default=60.0, gt=0)
    evses: tuple[EvseConfig, ...] = (EvseConfig(id=1),)
    reconnect: ReconnectConfig = ReconnectConfig()
    state_dir: Path = Path("/var/lib/v2g-gateway")
    #: The control loop's setpoint lease: short, renewed every ``control_tick_s``, so a dead
    #: station stops the discharge within ``lease_valid_for_s``.
    lease_valid_for_s: float = Field(default=2.0, gt=0)
    control_tick_s: float = Field(default=0.5, gt=0)
    #: An aFRR signal (AFRRSignalRequest) counts this long after its timestamp; a stream
    #: that stops for longer falls back to the CentralFrequency baseline (no aFRR response).
    #: The operator's stream comes every ~4 s (PICASSO), so the default allows two misses.
    afrr_signal_valid_for_s: float = Field(default=12.0, gt=0)
    #: Charging power with an EV plugged in and no profile limiting it (None = the EV's maximum).
    default_charge_w: float | None = Field(default=None, ge=0)
    #: Power changes smaller than this do not raise a ChargingRateChanged event.
    rate_change_threshold_w: float = Field(default=100.0, ge=0)
    #: A TransactionEvent the CSMS answers with a CALLERROR is tried this often, then dropped
    #: (logged): a poison message must not block every later event.
    transaction_message_attempts: int = Field(default=3, ge=1)
    transaction_message_retry_interval_s: float = Field(default=5.0, ge=0)
    #: Websocket keep-alive: a dead link is noticed within about ping_interval + ping_timeout.
    ws_ping_interval_s: float = Field(default=20.0, gt=0)
    ws_ping_timeout_s: float = Field(default=20.0, gt=0)
    #: A RequestStartTransaction waits this long for the EV to be plugged in
    #: (TxCtrlr.EVConnectionTimeOut).
    ev_connection_timeout_s: float = Field(default=120.0, gt=0)
    #: Reset: how long the control loop may take to ramp to 0 W before the restart anyway.
    reset_ramp_timeout_s: float = Field(default=30.0, gt=0)
    #: Security profile 3: ask the CSMS for a new client certificate (SignCertificate) this
    #: long before the current one expires; 0 = only when the CSMS triggers it.
    certificate_renew_before_days: float = Field(default=30.0, ge=0)
    #: Organization (O) of the certificate signing requests (SecurityCtrlr.OrganizationName).
    organization_name: str = Field(default="V2G VPP", min_length=1, max_length=64)
    #: No CertificateSigned this long after a SignCertificate: ask again, waiting twice as
    #: long each time, at most ``cert_signing_repeat_times`` times (SecurityCtrlr).
    cert_signing_wait_minimum_s: float = Field(default=60.0, gt=0)
    cert_signing_repeat_times: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _credentials_match_profile(self) -> StationConfig:
        scheme = self.csms_url.split("://", 1)[0]
        if self.security_profile == 1 and scheme != "ws":
            raise ValueError("security_profile 1 needs a ws:// csms_url")
        if self.security_profile in (2, 3) and scheme != "wss":
            raise ValueError(f"security_profile {self.security_profile} needs a wss:// csms_url")
        if self.security_profile in (1, 2) and self.password is None:
            raise ValueError(f"security_profile {self.security_profile} needs a password")
        if self.security_profile == 3 and (self.client_cert is None or self.client_key is None):
            raise ValueError("security_profile 3 needs client_cert and client_key")
        if len({e.id for e in self.evses}) != len(self.evses):
            raise ValueError("evse ids must be unique")
        if not self.subprotocols:
            raise ValueError("subprotocols must not be empty")
        if self.lease_valid_for_s <= self.control_tick_s:
            raise ValueError("lease_valid_for_s must exceed control_tick_s")
        return self

    def evse(self, evse_id: int) -> EvseConfig:
        for evse in self.evses:
            if evse.id == evse_id:
                return evse
        raise KeyError(evse_id)
