"""The device sections of ``gateway.toml`` and :class:`ControlProcessConfig`, what the control
process is started with. Kept apart from :mod:`v2g_gateway.config` so that the control process
validates its configuration without importing the station's or the uplink's code.

Which code opens a device is the section's ``kind`` (:mod:`v2g_gateway.adapters`): built-in
kinds for real hardware, other kinds (``simulated``) from installed adapter packages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from v2g_common.config import ConfigSection
from v2g_gateway.adapters import EvLinkKind, PowerSensorKind
from v2g_gateway.contactor import ContactorSection
from v2g_gateway.control.config import ControlSection
from v2g_gateway.hw.config import PowerModuleSection, PowerSensorSection

__all__ = [
    "ControlProcessConfig",
    "EvLinkSection",
    "Iso15118Section",
    "PowerSensorConfig",
    "SimulatorSection",
]


class SimulatorSection(ConfigSection):
    """Where ``simulated`` devices live: the v2g-sim control socket and the module's id."""

    socket: Path = Path("/tmp/v2g-sim.sock")
    device_id: int = Field(default=1, ge=1, le=247)


class PowerSensorConfig(PowerSensorSection):
    """The hardware layer's ``[power_sensor]`` keys plus which bus the INA228 is on:
    ``ina228`` on the kernel's i2c-dev, or another installed kind (``simulated``: the INA228
    model inside v2g-sim, see ``[simulator]``)."""

    kind: PowerSensorKind = "ina228"


class Iso15118Section(ConfigSection):
    """``[ev_link.iso15118]``: the SECC process of ``kind = "iso15118"`` (v2g-ev15118,
    docs/iso15118.md). ``python`` is the interpreter of its own virtualenv (the iso15118
    library pins pydantic 1); ``interface`` the PLC modem's network interface (IPv6
    link-local); ``socket`` where the gateway listens for it."""

    interface: str = Field(default="eth1", min_length=1, max_length=15)
    evse_id: str = Field(default="DE*V2G*E0001*1", min_length=1, max_length=37)
    python: Path = Path("/opt/v2g-gateway/venv-iso15118/bin/python")
    socket: Path = Path("/run/v2g-gateway/secc.sock")
    protocols: list[
        Literal["ISO_15118_20_DC", "ISO_15118_20_AC", "ISO_15118_2", "DIN_SPEC_70121"]
    ] = Field(
        default=["ISO_15118_20_DC", "ISO_15118_20_AC", "ISO_15118_2", "DIN_SPEC_70121"],
        min_length=1,
    )
    enforce_tls: bool = False
    #: V2G_SECC_Sequence_Timeout: an EV silent this long is EV_COMM_TIMEOUT (standard: 60 s)
    sequence_timeout_s: float = Field(default=60.0, gt=0, le=60.0)
    pki_dir: Path | None = None
    restart_backoff_s: float = Field(default=1.0, gt=0)
    restart_backoff_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _tls_has_certificates(self) -> Iso15118Section:
        if self.enforce_tls and self.pki_dir is None:
            raise ValueError(
                "ev_link.iso15118.enforce_tls needs ev_link.iso15118.pki_dir (the SECC's "
                "certificates: provision-pki iso15118, iso15118/secc/<identity>)"
            )
        return self


class EvLinkSection(ConfigSection):
    """``[ev_link]``: where the EV's ISO 15118 charging needs come from. ``none`` means no V2X
    data, so no discharge; other kinds come from installed adapter packages (``simulated``:
    the v2g-sim control socket, ``[simulator]``; ``iso15118``: v2g-ev15118's SECC process,
    ``[ev_link.iso15118]``)."""

    kind: EvLinkKind = "none"
    iso15118: Iso15118Section = Iso15118Section()


class ControlProcessConfig(ConfigSection):
    """What the control process is started with (no station/uplink secrets on its stdin)."""

    control: ControlSection = ControlSection()
    power_module: PowerModuleSection = PowerModuleSection()
    power_sensor: PowerSensorConfig = PowerSensorConfig()
    contactor: ContactorSection = ContactorSection()
    simulator: SimulatorSection = SimulatorSection()
    log_level: str = "INFO"
    startup_timeout_s: float = 30.0
