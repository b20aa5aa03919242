"""OCPP 2.1 charging-station role of the edge gateway: transactions and meter values, V2X
charging needs, smart charging (profile store + composite schedule -> setpoint lease), and an
offline TransactionEvent queue. Entry point: :class:`ChargingStation`.

The names below are imported on first use (``v2g_common.lazy``): importing
``v2g_gateway.station.config`` loads no OCPP code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from v2g_common.lazy import lazy_exports

if TYPE_CHECKING:
    from v2g_gateway.station.composite import CompositeSchedule, compose
    from v2g_gateway.station.config import StationConfig
    from v2g_gateway.station.station import ChargingStation

__all__ = ["ChargingStation", "CompositeSchedule", "StationConfig", "compose"]

__getattr__ = lazy_exports(
    __name__,
    {
        "CompositeSchedule": "composite",
        "compose": "composite",
        "StationConfig": "config",
        "ChargingStation": "station",
    },
)
