"""A stand-in lease source for commissioning and tests, until the OCPP station feeds leases.

Every ``renew_every_s`` it grants ``power_w`` for ``valid_for_s`` and (optionally) reports a
CSMS contact, so the control loop behaves exactly as under a live CSMS. Disabled by default:
a field unit takes its leases from the station only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pydantic import Field

from v2g_common.config import ConfigSection
from v2g_gateway.control.channel import ControlChannel, SetpointLease

if TYPE_CHECKING:
    from v2g_gateway.config import GatewayConfig

__all__ = ["LocalLeaseSection", "LocalLeaseSource"]

log = logging.getLogger(__name__)


class LocalLeaseSection(ConfigSection):
    """``[local_lease]``: a fixed lease from config (power signed: < 0 discharges the EV)."""

    enabled: bool = False
    power_w: float = 0.0
    valid_for_s: float = Field(default=10.0, gt=0)
    renew_every_s: float = Field(default=2.0, gt=0)
    counts_as_csms_contact: bool = True
    ev_max_charge_w: float = Field(default=11000.0, ge=0)
    ev_max_discharge_w: float = Field(default=0.0, ge=0)


class LocalLeaseSource:
    """Supervisor service granting the configured lease; SIGHUP picks up new values."""

    name = "local-lease"

    def __init__(self, section: LocalLeaseSection) -> None:
        self._section = section
        self._changed = asyncio.Event()

    def reload(self, config: GatewayConfig) -> None:
        section = config.local_lease
        self._section = section
        self._changed.set()
        log.info("local lease now %.0f W for %.1f s", section.power_w, section.valid_for_s)

    async def run(self, channel: ControlChannel) -> None:
        while True:
            s = self._section
            if s.enabled:
                channel.set_ev_limits(
                    max_charge_w=s.ev_max_charge_w, max_discharge_w=s.ev_max_discharge_w
                )
                if s.counts_as_csms_contact:
                    channel.mark_csms_contact()
                channel.grant_lease(SetpointLease(s.power_w, s.valid_for_s))
            self._changed.clear()
            try:
                async with asyncio.timeout(s.renew_every_s):
                    await self._changed.wait()
            except TimeoutError:
                pass
