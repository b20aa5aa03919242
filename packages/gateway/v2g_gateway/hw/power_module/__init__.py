"""SunSpec power module over Modbus RTU: register map (data), codec (pure), link, driver."""

from v2g_gateway.hw.power_module.client import open_power_module, open_serial_client
from v2g_gateway.hw.power_module.driver import ModuleIdentity, ModuleStatus, SunSpecPowerModule
from v2g_gateway.hw.power_module.register_map import (
    RegisterMap,
    load_register_map,
    standard_register_map,
)
from v2g_gateway.hw.power_module.transport import FrameMonitor, RegisterLink

__all__ = [
    "FrameMonitor",
    "ModuleIdentity",
    "ModuleStatus",
    "RegisterLink",
    "RegisterMap",
    "SunSpecPowerModule",
    "load_register_map",
    "open_power_module",
    "open_serial_client",
    "standard_register_map",
]
