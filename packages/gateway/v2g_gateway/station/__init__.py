"""OCPP 2.1 charging-station role of the edge gateway: transactions and meter values, V2X
charging needs, smart charging (profile store + composite schedule -> setpoint lease), and an
offline TransactionEvent queue. Entry point: :class:`ChargingStation`."""

from v2g_gateway.station.composite import CompositeSchedule, compose
from v2g_gateway.station.config import StationConfig
from v2g_gateway.station.station import ChargingStation

__all__ = ["ChargingStation", "CompositeSchedule", "StationConfig", "compose"]
