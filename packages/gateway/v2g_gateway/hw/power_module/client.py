"""Wiring helper: build the pymodbus serial client and the driver from the config section.

Only start-up wiring calls this; the driver itself is given its link.
"""

from __future__ import annotations

import logging

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

from v2g_gateway.hw.config import PowerModuleSection
from v2g_gateway.hw.power_module.driver import SunSpecPowerModule
from v2g_gateway.hw.power_module.register_map import load_register_map, standard_register_map
from v2g_gateway.hw.power_module.transport import FrameMonitor, RegisterLink

__all__ = ["open_power_module", "open_serial_client"]


def open_serial_client(
    section: PowerModuleSection, monitor: FrameMonitor
) -> AsyncModbusSerialClient:
    """An RTU client with pymodbus' retries off (``RegisterLink`` retries and classifies).

    pymodbus logs every unanswered request at ERROR; ``RegisterLink`` logs once per outage
    instead, so pymodbus' own logger is raised to CRITICAL (process-wide)."""
    logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)
    return AsyncModbusSerialClient(
        section.port,
        framer=FramerType.RTU,
        baudrate=section.baudrate,
        bytesize=section.bytesize,
        parity=section.parity,
        stopbits=section.stopbits,
        timeout=section.timeout_s,
        retries=0,
        reconnect_delay=section.reconnect_delay_s,
        reconnect_delay_max=max(section.reconnect_delay_s, 10.0),
        trace_packet=monitor,
    )


def open_power_module(
    section: PowerModuleSection,
) -> tuple[SunSpecPowerModule, AsyncModbusSerialClient]:
    """The driver and the client it uses (the caller closes the client at shutdown)."""
    monitor = FrameMonitor()
    client = open_serial_client(section, monitor)
    link = RegisterLink(
        client,
        device_id=section.device_id,
        timeout_s=section.timeout_s,
        retries=section.retries,
        monitor=monitor,
    )
    register_map = (
        load_register_map(section.map_file) if section.map_file else standard_register_map()
    )
    module = SunSpecPowerModule(
        link,
        register_map=register_map,
        base_addresses=section.base_addresses,
        cache_scale_factors=section.cache_scale_factors,
    )
    return module, client
