"""Live fleet state (memory, authoritative) with a write-behind store (SQLite / PostgreSQL).

``FleetState`` implements ``vpp_core.dispatch.ports.FleetView``.
"""

from vpp_core.fleet.config import FleetConfig
from vpp_core.fleet.errors import (
    FleetError,
    MeterValueError,
    RegistryError,
    StoreError,
    UnknownStationError,
)
from vpp_core.fleet.meter import MeterReading, parse_meter_values
from vpp_core.fleet.model import (
    EvseLive,
    Sample,
    SessionLive,
    StationEntry,
    StationLive,
    V2xLimits,
)
from vpp_core.fleet.registry import StationRegistry, hash_password, verify_password
from vpp_core.fleet.state import FleetState
from vpp_core.fleet.store import FleetSnapshot, FleetStore, WriteBatch
from vpp_core.fleet.writebehind import WriteBehind

__all__ = [
    "EvseLive",
    "FleetConfig",
    "FleetError",
    "FleetSnapshot",
    "FleetState",
    "FleetStore",
    "MeterReading",
    "MeterValueError",
    "RegistryError",
    "Sample",
    "SessionLive",
    "StationEntry",
    "StationLive",
    "StationRegistry",
    "StoreError",
    "UnknownStationError",
    "V2xLimits",
    "WriteBatch",
    "WriteBehind",
    "hash_password",
    "parse_meter_values",
    "verify_password",
]
