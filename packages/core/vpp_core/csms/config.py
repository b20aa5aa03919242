"""``[csms]``: the OCPP server's listener, TLS, limits and command defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from v2g_common.config import ConfigSection

__all__ = ["CsmsConfig"]


class CsmsConfig(ConfigSection):
    host: str = "0.0.0.0"
    port: int = Field(default=8443, ge=0, le=65535)
    #: Server certificate and key (PEM). Without them the listener is plain ws, which only
    #: security-profile-1 stations may use, and only with ``allow_security_profile_1``.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: CA that issued station client certificates (security profile 3). Profile 2 and 3
    #: stations share the listener: a profile-3 station must present a certificate whose CN
    #: is its identity, a profile-2 station Basic auth.
    tls_client_ca_file: Path | None = None
    #: Basic auth without TLS (security profile 1). For labs and load tests only.
    allow_security_profile_1: bool = False
    subprotocols: list[Literal["ocpp2.1", "ocpp2.0.1"]] = ["ocpp2.1", "ocpp2.0.1"]
    #: Largest websocket message accepted; a larger one closes that connection (1009).
    max_frame_bytes: int = Field(default=131_072, ge=4096)
    #: Frames buffered per connection before reading from its socket pauses.
    max_queued_frames: int = Field(default=16, ge=1)
    #: Sustained messages per second one station may send; beyond, its socket is read
    #: slower (TCP back-pressure on that station only). ``burst`` messages pass at once.
    max_messages_per_s: float = Field(default=50.0, gt=0)
    message_burst: int = Field(default=200, ge=1)
    #: Connections the kernel queues until the core accepts them (capped by the kernel's
    #: net.core.somaxconn). asyncio's 100 overflowed in reconnect storms: dropped SYNs are
    #: retried by the station's TCP after 1, 2, 4 s, past its open timeout
    #: (docs/admission.md).
    listen_backlog: int = Field(default=4096, ge=1, le=65535)
    #: Connections in their opening phase (accepted, TLS, HTTP upgrade, until the handshake
    #: is decided); more are closed at accept, before any TLS work, so a reconnect storm
    #: never makes the core work on openings the stations time out (csms/opening.py,
    #: docs/admission.md).
    max_opening_connections: int = Field(default=2000, ge=1, le=100_000)
    #: Opening handshake (TCP + TLS + HTTP upgrade) must finish within this.
    open_timeout_s: float = Field(default=10.0, gt=0)
    #: Websocket pings (0 disables); a peer that misses the pong for ping_timeout_s is closed.
    ping_interval_s: float = Field(default=60.0, ge=0)
    ping_timeout_s: float = Field(default=30.0, gt=0)
    #: Heartbeat interval told to stations in BootNotification.
    heartbeat_interval_s: int = Field(default=300, ge=1)
    #: Default answer timeout of commands to stations.
    command_timeout_s: float = Field(default=30.0, gt=0)
    #: Password checks of rows still in the old scheme (scrypt, ~55 ms; each is rewritten in
    #: the fast one at its station's first login): threads, and how many may wait; more
    #: are refused with 503 and a Retry-After of auth_retry_after_s to twice that.
    auth_workers: int = Field(default=1, ge=1)
    auth_queue_max: int = Field(default=2000, ge=1)
    auth_retry_after_s: int = Field(default=10, ge=1, le=3600)
    #: Authorize / TransactionEvent idTokens: "accept_all" (sites that authorize locally) or
    #: "token_list" (only tokens added with ``vpp-core tokens add``; others are Unknown).
    id_token_policy: Literal["accept_all", "token_list"] = "accept_all"
    #: CA that signs station certificates on SignCertificate (security profile 3 renewal).
    #: Stations must trust its certificates: it is, or is in, ``tls_client_ca_file``.
    #: Without it SignCertificate is Rejected.
    ca_cert_file: Path | None = None
    ca_key_file: Path | None = None
    station_certificate_valid_days: int = Field(default=365, ge=1, le=3650)
    #: A profile-3 station whose certificate expires within this is asked to renew it
    #: (TriggerMessage SignChargingStationCertificate after its boot); 0 = never.
    certificate_renew_before_days: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _tls_pairs(self) -> CsmsConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file/tls_key_file")
        if (self.ca_cert_file is None) != (self.ca_key_file is None):
            raise ValueError("ca_cert_file and ca_key_file go together")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None
