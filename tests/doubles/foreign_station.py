"""A charging station that is not ours: the ``ocpp`` library's own v2.1 / v2.0.1
``ChargePoint`` in the station role, connected with plain ``websockets`` to our CSMS, every
frame both ways recorded and checked against the OCA schemas
(:class:`~tests.doubles.oca_schemas.ValidatingConnection`).

It keeps the charging profiles it is sent and follows the top TxProfile like an EV would
(``setpoint``, or ``limit`` — negative in the legacy form), meters at ``meter_interval_s``
(TransactionEvent Updated with signed power, registers, SoC), and answers the CSMS's
management commands with fixed, schema-valid answers (recorded in ``received``).

Known defects of ``ocpp`` 2.1.0 worked around here, not in our adapter: an action without a
handler gets a NotImplemented CALLERROR from :meth:`_Station.route_message` (the library sends
nothing under 2.1); ``call`` always passes ``suppress=False``; the commands sent use none of
the keys the library's snake->camel conversion breaks.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import after, on
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.doubles.loopback import NotImplementedFallback, basic_auth
from tests.doubles.oca_schemas import ValidatingConnection

__all__ = ["ForeignStation"]

#: Device model variables the station reports (GetBaseReport) and answers (GetVariables).
VARIABLES = [
    ("OCPPCommCtrlr", "HeartbeatInterval", "ReadWrite", "integer", "300"),
    ("SampledDataCtrlr", "TxUpdatedInterval", "ReadWrite", "integer", "60"),
    ("SmartChargingCtrlr", "Enabled", "ReadOnly", "boolean", "true"),
    ("SmartChargingCtrlr", "RateUnit", "ReadOnly", "MemberList", "W,A"),
    ("SecurityCtrlr", "SecurityProfile", "ReadOnly", "integer", "2"),
]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _handlers(results: Any, calls: Any) -> dict[str, Any]:
    """CSMS-initiated actions, for one version's result and call classes."""

    class Handlers:
        @on("SetChargingProfile")
        def set_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
            self.sim.profiles[charging_profile["id"]] = charging_profile
            self.sim.received.append(("SetChargingProfile", charging_profile))
            return results.SetChargingProfile(status="Accepted")

        @on("ClearChargingProfile")
        def clear_profile(self, **kwargs: Any) -> Any:
            self.sim.received.append(("ClearChargingProfile", kwargs))
            removed = self.sim.clear(kwargs)
            return results.ClearChargingProfile(status="Accepted" if removed else "Unknown")

        @on("GetChargingProfiles")
        def get_profiles(self, request_id: int, **_: Any) -> Any:
            return results.GetChargingProfiles(
                status="Accepted" if self.sim.profiles else "NoProfiles"
            )

        @after("GetChargingProfiles")
        async def report_profiles(self, request_id: int, **_: Any) -> None:
            if self.sim.profiles:
                await self.call(
                    calls.ReportChargingProfiles(
                        request_id=request_id,
                        charging_limit_source="CSO",
                        evse_id=1,
                        charging_profile=list(self.sim.profiles.values()),
                    ),
                    suppress=False,
                )

        @on("GetCompositeSchedule")
        def composite(self, **_: Any) -> Any:
            return results.GetCompositeSchedule(status="Rejected")

        @on("GetVariables")
        def get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
            self.sim.received.append(("GetVariables", get_variable_data))
            return results.GetVariables(
                get_variable_result=[self.sim.get_variable(d) for d in get_variable_data]
            )

        @on("SetVariables")
        def set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
            self.sim.received.append(("SetVariables", set_variable_data))
            return results.SetVariables(
                set_variable_result=[self.sim.set_variable(d) for d in set_variable_data]
            )

        @on("GetBaseReport")
        def base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
            return results.GetBaseReport(status="Accepted")

        @after("GetBaseReport")
        async def send_report(self, request_id: int, report_base: str, **_: Any) -> None:
            data = self.sim.report_data()
            for seq_no, chunk in enumerate((data[:3], data[3:])):
                await self.call(
                    calls.NotifyReport(
                        request_id=request_id,
                        generated_at=_now(),
                        seq_no=seq_no,
                        report_data=chunk,
                        tbc=seq_no == 0,
                    ),
                    suppress=False,
                )

        @on("Reset")
        def reset(self, type: str, **kwargs: Any) -> Any:
            self.sim.received.append(("Reset", {"type": type, **kwargs}))
            return results.Reset(status="Scheduled" if self.sim.tx_id else "Accepted")

        @on("RequestStartTransaction")
        def request_start(self, **kwargs: Any) -> Any:
            self.sim.received.append(("RequestStartTransaction", kwargs))
            return results.RequestStartTransaction(status="Accepted", transaction_id=self.sim.tx_id)

        @on("RequestStopTransaction")
        def request_stop(self, transaction_id: str, **_: Any) -> Any:
            self.sim.received.append(("RequestStopTransaction", {"transaction_id": transaction_id}))
            known = transaction_id == self.sim.tx_id
            return results.RequestStopTransaction(status="Accepted" if known else "Rejected")

        @on("ChangeAvailability")
        def availability(self, operational_status: str, **kwargs: Any) -> Any:
            self.sim.received.append(("ChangeAvailability", {"status": operational_status}))
            return results.ChangeAvailability(status="Accepted")

        @on("TriggerMessage")
        def trigger(self, requested_message: str, **_: Any) -> Any:
            self.sim.received.append(("TriggerMessage", {"message": requested_message}))
            return results.TriggerMessage(status="Accepted")

        @on("CertificateSigned")
        def certificate_signed(self, certificate_chain: str, **_: Any) -> Any:
            self.sim.certificates.append(certificate_chain)
            return results.CertificateSigned(status="Accepted")

    table = {k: v for k, v in vars(Handlers).items() if not k.startswith("__")}
    return table


def _v21_only() -> dict[str, Any]:
    class Handlers:
        @on("NotifyAllowedEnergyTransfer")
        def allowed(self, **kwargs: Any) -> Any:
            self.sim.received.append(("NotifyAllowedEnergyTransfer", kwargs))
            return result21.NotifyAllowedEnergyTransfer(status="Accepted")

        @on("UpdateDynamicSchedule")
        def dynamic(self, **kwargs: Any) -> Any:
            return result21.UpdateDynamicSchedule(status="Rejected")

    return {k: v for k, v in vars(Handlers).items() if not k.startswith("__")}


class _Station(NotImplementedFallback):
    """Shared by both versions: the simulation it drives, NotImplemented for the unhandled."""

    sim: ForeignStation


Station21 = type(
    "Station21", (_Station, ChargePoint21), {**_handlers(result21, call21), **_v21_only()}
)
Station201 = type("Station201", (_Station, ChargePoint201), _handlers(result201, call201))


class ForeignStation:
    """``async with ForeignStation("CS-0001", url=..., password=...) as station``."""

    def __init__(
        self,
        identity: str,
        *,
        url: str,
        subprotocol: str = "ocpp2.1",
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_charge_w: float = 11_000.0,
        soc_pct: float = 60.0,
        meter_interval_s: float = 0.25,
    ) -> None:
        self.identity = identity
        self.url = url
        self.subprotocol = subprotocol
        self.calls = call21 if subprotocol == "ocpp2.1" else call201
        self._password = password
        self._ssl = ssl_context
        self.max_charge_w = max_charge_w
        self.soc_pct = soc_pct
        self.meter_interval_s = meter_interval_s
        self.profiles: dict[int, dict[str, Any]] = {}
        self.received: list[tuple[str, Any]] = []
        self.certificates: list[str] = []
        self.variables = {(c, v): value for c, v, _m, _t, value in VARIABLES}
        self.tx_id: str | None = None
        self.power_w = 0.0
        self.import_wh = 1000.0
        self.export_wh = 500.0
        self._seq = itertools.count(0)
        self._ws: ClientConnection | None = None
        self.connection: ValidatingConnection | None = None
        self.cp: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ForeignStation:
        headers = {}
        if self._password is not None:
            headers["Authorization"] = basic_auth(self.identity, self._password)
        self._ws = await connect(
            f"{self.url}/{self.identity}",
            subprotocols=[self.subprotocol],  # type: ignore[list-item]
            additional_headers=headers,
            ssl=self._ssl,
            open_timeout=5,
        )
        self.connection = ValidatingConnection(self._ws)
        kind = Station21 if self.subprotocol == "ocpp2.1" else Station201
        self.cp = kind(self.identity, self.connection)
        self.cp.sim = self
        self._tasks.append(asyncio.create_task(self._serve(), name=f"foreign-{self.identity}"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        assert self._ws is not None
        await self._ws.close()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, ConnectionClosed):
                pass

    async def _serve(self) -> None:
        try:
            await self.cp.start()
        except ConnectionClosed:
            pass

    @property
    def violations(self) -> list[str]:
        return [] if self.connection is None else self.connection.violations

    async def call(self, request: Any, *, timeout_s: float = 10.0) -> Any:
        return await asyncio.wait_for(self.cp.call(request, suppress=False), timeout_s)

    # -- the station's own messages -------------------------------------------------------
    async def boot(self) -> Any:
        answer = await self.call(
            self.calls.BootNotification(
                charging_station={"model": "Foreign-1", "vendor_name": "OCA lib"},
                reason="PowerUp",
            )
        )
        await self.call(
            self.calls.StatusNotification(
                timestamp=_now(), connector_status="Available", evse_id=1, connector_id=1
            )
        )
        return answer

    async def authorize(self, id_token: str, token_type: str = "ISO14443") -> str:
        answer = await self.call(
            self.calls.Authorize(id_token={"id_token": id_token, "type": token_type})
        )
        return str(answer.id_token_info["status"])

    async def start_transaction(self, tx_id: str, id_token: dict[str, Any] | None) -> Any:
        self.tx_id = tx_id
        await self.call(
            self.calls.StatusNotification(
                timestamp=_now(), connector_status="Occupied", evse_id=1, connector_id=1
            )
        )
        return await self._event("Started", "CablePluggedIn", id_token=id_token)

    async def notify_needs(self, needs: dict[str, Any]) -> Any:
        return await self.call(self.calls.NotifyEVChargingNeeds(evse_id=1, charging_needs=needs))

    async def end_transaction(self) -> Any:
        answer = await self._event("Ended", "EVCommunicationLost", stopped_reason="EVDisconnected")
        self.tx_id = None
        return answer

    async def _event(
        self,
        event_type: str,
        reason: str,
        *,
        id_token: dict[str, Any] | None = None,
        stopped_reason: str | None = None,
    ) -> Any:
        assert self.tx_id is not None
        info: dict[str, Any] = {"transaction_id": self.tx_id, "charging_state": "Charging"}
        if stopped_reason is not None:
            info["stopped_reason"] = stopped_reason
        return await self.call(
            self.calls.TransactionEvent(
                event_type=event_type,
                timestamp=_now(),
                trigger_reason=reason,
                seq_no=next(self._seq),
                transaction_info=info,
                evse={"id": 1, "connector_id": 1},
                id_token=id_token,
                meter_value=[self._meter_value()],
            )
        )

    def _meter_value(self) -> dict[str, Any]:
        def sample(value: float, measurand: str) -> dict[str, Any]:
            return {"value": round(value, 3), "measurand": measurand}

        return {
            "timestamp": _now(),
            "sampled_value": [
                sample(self.power_w, "Power.Active.Import"),
                sample(self.import_wh, "Energy.Active.Import.Register"),
                sample(self.export_wh, "Energy.Active.Export.Register"),
                sample(self.soc_pct, "SoC"),
            ],
        }

    # -- behaving like an EV ----------------------------------------------------------------
    def start_metering(self) -> None:
        self._tasks.append(asyncio.create_task(self._meter_loop(), name="foreign-meter"))

    async def _meter_loop(self) -> None:
        while True:
            await asyncio.sleep(self.meter_interval_s)
            energy_wh = self.power_w * self.meter_interval_s / 3600.0
            self.import_wh += max(energy_wh, 0.0)
            self.export_wh += max(-energy_wh, 0.0)
            self.soc_pct += 100.0 * energy_wh / 60_000.0
            self.power_w = self.target_w()
            if self.tx_id is not None:
                await self._event("Updated", "MeterValuePeriodic")

    def target_w(self) -> float:
        """What the top TxProfile asks for (setpoint, else limit), else full charging."""
        if self.tx_id is None:
            return 0.0
        mine = [p for p in self.profiles.values() if p["charging_profile_purpose"] == "TxProfile"]
        if not mine:
            return self.max_charge_w
        top = max(mine, key=lambda p: p["stack_level"])
        period = top["charging_schedule"][0]["charging_schedule_period"][0]
        value = period.get("setpoint", period.get("limit", self.max_charge_w))
        return float(min(value, self.max_charge_w))

    def clear(self, criteria: dict[str, Any]) -> bool:
        profile_id = criteria.get("charging_profile_id")
        wanted = criteria.get("charging_profile_criteria") or {}
        gone = [
            pid
            for pid, p in self.profiles.items()
            if (profile_id is None or pid == profile_id)
            and all(p.get(k) == v for k, v in wanted.items() if k != "evse_id")
        ]
        for pid in gone:
            del self.profiles[pid]
        return bool(gone)

    # -- device model -----------------------------------------------------------------------
    def get_variable(self, data: dict[str, Any]) -> dict[str, Any]:
        key = (data["component"]["name"], data["variable"]["name"])
        value = self.variables.get(key)
        result = {"component": data["component"], "variable": data["variable"]}
        if value is None:
            return {**result, "attribute_status": "UnknownVariable"}
        return {**result, "attribute_status": "Accepted", "attribute_value": value}

    def set_variable(self, data: dict[str, Any]) -> dict[str, Any]:
        key = (data["component"]["name"], data["variable"]["name"])
        result = {"component": data["component"], "variable": data["variable"]}
        writable = {(c, v) for c, v, m, _t, _v in VARIABLES if m == "ReadWrite"}
        if key not in writable:
            return {**result, "attribute_status": "Rejected"}
        self.variables[key] = data["attribute_value"]
        return {**result, "attribute_status": "Accepted"}

    def report_data(self) -> list[dict[str, Any]]:
        return [
            {
                "component": {"name": component},
                "variable": {"name": variable},
                "variable_attribute": [
                    {
                        "type": "Actual",
                        "value": self.variables[(component, variable)],
                        "mutability": mutability,
                    }
                ],
                "variable_characteristics": {"data_type": data_type, "supports_monitoring": False},
            }
            for component, variable, mutability, data_type, _ in VARIABLES
        ]
