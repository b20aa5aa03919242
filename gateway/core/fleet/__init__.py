"""Live fleet state (memory, authoritative) with a write-behind store (SQLite / PostgreSQL).

``FleetState`` implements ``gateway.core.dispatch.ports.FleetView``.
"""

from gateway.core.fleet.config import FleetConfig
from gateway.core.fleet.errors import (
    FleetError,
    MeterValueError,
    RegistryError,
    StoreError,
    UnknownStationError,
)
from gateway.core.fleet.meter import MeterReading, parse_meter_values
from gateway.core.fleet.model import (
    EvseLive,
    Sample,
    SessionLive,
    StationEntry,
    StationLive,
    V2xLimits,
)
from gateway.core.fleet.registry import StationRegistry, hash_password, verify_password
from gateway.core.fleet.state import FleetState
from gateway.core.fleet.store import FleetSnapshot, FleetStore, WriteBatch
from gateway.core.fleet.writebehind import WriteBehind

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
