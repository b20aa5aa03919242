"""A light-weight simulated charging station speaking real OCPP 2.1 JSON over websockets.

One EVSE, one EV (``v2g_sim.module.PowerModuleModel``: lag, ramp, dead-band, SoC, energy
registers). It boots, starts a transaction, declares V2X charging needs, reports meter values
every ``meter_every_s`` (simulated), keeps the charging profiles the CSMS sends (the highest
stackLevel valid TxProfile's setpoint, or legacy limit, drives the EV), answers
Get/Clear/UpdateDynamicSchedule, and can unplug (TransactionEvent Ended). Time is the test's
(compressed) clock.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from datetime import datetime, timedelta
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from v2g_sim.ev import EvSpec, charging_needs
from v2g_sim.module import ModuleSpec, PowerModuleModel
from vpp_core.dispatch.clock import ScaledClock


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class OcppStation:
    def __init__(
        self,
        identity: str,
        ev: EvSpec,
        clock: ScaledClock,
        *,
        tau_s: float,
        meter_every_s: float = 10.0,
        step_s: float = 1.0,
    ) -> None:
        self.identity = identity
        self.ev = ev
        self.clock = clock
        self.module = PowerModuleModel(
            spec=ModuleSpec(lag_tau_s=tau_s, ramp_w_per_s=3_000.0, deadband_w=50.0)
        )
        self.module.plug_in(ev)
        self.tx = f"tx-{identity}"
        self.profiles: list[dict[str, Any]] = []
        self.meter_every_s = meter_every_s
        self.step_s = step_s
        self.unplug_at: datetime | None = None
        self.plugged = True
        self._ids = itertools.count(1)
        self._seq = itertools.count(0)
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._ws: ClientConnection | None = None
        self._tg: asyncio.TaskGroup | None = None
        self.errors: list[Any] = []
        #: Ground truth of the session's energy (Wh into the EV, negative = out): the
        #: module's registers at plug-in and as the Ended event reported them.
        self.registers_at_plug = (self.module.energy_absorbed_wh, self.module.energy_injected_wh)
        self.registers_at_end: tuple[float, float] | None = None
        self.last_periodic_at: datetime | None = None

    async def run(
        self, url: str, password: str, *, ready: asyncio.Event, stop: asyncio.Event
    ) -> None:
        async with self.connect(url, password) as ws:
            self._ws = ws
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                reader = tg.create_task(self._read(), name=f"{self.identity}-reader")
                await self._start_session()
                ready.set()
                await self._live(stop)
                reader.cancel()

    def connect(self, url: str, password: str) -> Any:
        """The station's websocket to ``url``/identity (security profile 1: Basic auth)."""
        token = base64.b64encode(f"{self.identity}:{password}".encode()).decode()
        return connect(
            f"{url}/{self.identity}",
            subprotocols=["ocpp2.1"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
            compression=None,
            open_timeout=10,
            ping_interval=None,
        )

    # --- our CALLs --------------------------------------------------------------------
    async def _call(self, action: str, payload: dict[str, Any]) -> Any:
        assert self._ws is not None
        mid = f"{self.identity}-{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[mid] = fut
        await self._ws.send(json.dumps([2, mid, action, payload]))
        async with asyncio.timeout(10):
            frame = await fut
        if frame[0] != 3:
            self.errors.append(frame)
        return frame[2] if frame[0] == 3 else None

    def _meter(self, now: datetime) -> list[dict[str, Any]]:
        m = self.module
        values = [
            {"value": round(m.power_w, 1), "measurand": "Power.Active.Import"},
            {"value": round(m.energy_absorbed_wh, 3), "measurand": "Energy.Active.Import.Register"},
            {"value": round(m.energy_injected_wh, 3), "measurand": "Energy.Active.Export.Register"},
            {"value": round(m.soc_pct or 0.0, 3), "measurand": "SoC"},
        ]
        return [{"timestamp": _iso(now), "sampledValue": values}]

    async def _tx_event(self, event: str, trigger: str, now: datetime) -> None:
        info: dict[str, Any] = {"transactionId": self.tx, "chargingState": "Charging"}
        payload = {
            "eventType": event,
            "timestamp": _iso(now),
            "triggerReason": trigger,
            "seqNo": next(self._seq),
            "transactionInfo": info,
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": self._meter(now),
        }
        if event == "Ended":
            info.update(stoppedReason="EVDisconnected", chargingState="Idle")
        await self._call("TransactionEvent", payload)

    async def _start_session(self) -> None:
        now = self.clock.now()
        await self._call(
            "BootNotification",
            {"chargingStation": {"model": "SIM", "vendorName": "VPP"}, "reason": "PowerUp"},
        )
        await self._tx_event("Started", "CablePluggedIn", now)
        needs = charging_needs(self.ev, soc_pct=self.ev.soc_pct, plugged_at=now)
        v2x = {
            "maxChargePower": needs.max_charge_w,
            "minChargePower": needs.min_charge_w,
            "maxDischargePower": needs.max_discharge_w,
            "minDischargePower": needs.min_discharge_w,
            "evMinV2XEnergyRequest": needs.ev_min_v2x_energy_wh,
            "evMaxV2XEnergyRequest": needs.ev_max_v2x_energy_wh,
            "evTargetEnergyRequest": needs.ev_target_energy_wh,
            "targetSoC": int(needs.target_soc_pct or 80),
        }
        charging = {
            "requestedEnergyTransfer": "DC_BPT",
            "controlMode": "DynamicControl",
            "v2xChargingParameters": {k: v for k, v in v2x.items() if v is not None},
            "dcChargingParameters": {
                "evMaxCurrent": 250,
                "evMaxVoltage": 450,
                "evEnergyCapacity": needs.battery_capacity_wh,
                "stateOfCharge": int(self.ev.soc_pct),
            },
        }
        if needs.departure is not None:
            charging["departureTime"] = _iso(needs.departure)
        await self._call(
            "NotifyEVChargingNeeds",
            {"evseId": 1, "chargingNeeds": charging, "timestamp": _iso(now)},
        )

    async def _live(self, stop: asyncio.Event) -> None:
        t = self.clock.now()
        next_meter = t + timedelta(seconds=self.meter_every_s)
        while not stop.is_set():
            nxt = t + timedelta(seconds=self.step_s)
            await self.clock.sleep_until(nxt)
            now = self.clock.now()
            if self.plugged:
                self.module.command_setpoint(self._setpoint(t))
                self.module.step((now - t).total_seconds())
            t = now
            if self.plugged and self.unplug_at is not None and now >= self.unplug_at:
                await self.unplug(now)
            elif self.plugged and now >= next_meter:
                next_meter = now + timedelta(seconds=self.meter_every_s)
                self.last_periodic_at = now
                await self._tx_event("Updated", "MeterValuePeriodic", now)

    async def unplug(self, now: datetime) -> None:
        """The EV leaves: its TxProfiles go with the transaction (TransactionEvent Ended)."""
        self.plugged = False
        self.module.plug_out()
        self.profiles = [p for p in self.profiles if p.get("transactionId") != self.tx]
        self.registers_at_end = (self.module.energy_absorbed_wh, self.module.energy_injected_wh)
        await self._tx_event("Ended", "EVCommunicationLost", now)

    @property
    def session_energy_wh(self) -> float:
        """What the session moved in all (net into the EV), to its Ended reading."""
        assert self.registers_at_end is not None
        (i0, e0), (i1, e1) = self.registers_at_plug, self.registers_at_end
        return (i1 - i0) - (e1 - e0)

    def commanded_w(self, now: datetime) -> float:
        """The setpoint this station applies now (0 once the EV is gone)."""
        return self._setpoint(now) if self.plugged else 0.0

    def _setpoint(self, now: datetime) -> float:
        best = None
        for p in self.profiles:
            if p.get("chargingProfilePurpose") != "TxProfile" or p.get("transactionId") not in (
                None,
                self.tx,
            ):
                continue
            if "validTo" in p and _parse(p["validTo"]) <= now:
                continue
            if "validFrom" in p and _parse(p["validFrom"]) > now:
                continue
            if best is None or p["stackLevel"] > best["stackLevel"]:
                best = p
        if best is None:
            return 0.0
        period = best["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        return float(period.get("setpoint", period.get("limit", 0.0)))

    # --- CSMS CALLs -------------------------------------------------------------------
    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            frame = json.loads(raw)
            if frame[0] in (3, 4):
                fut = self._waiting.pop(frame[1], None)
                if fut is not None and not fut.done():
                    fut.set_result(frame)
                continue
            answer, after = self._handle(frame[2], frame[3])
            await self._ws.send(json.dumps([3, frame[1], answer]))
            if after is not None:
                assert self._tg is not None
                self._tg.create_task(after, name=f"{self.identity}-report")

    def _handle(self, action: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        if action == "SetChargingProfile":
            new = payload["chargingProfile"]
            self.profiles = [
                p
                for p in self.profiles
                if not (
                    p["id"] == new["id"]
                    or (
                        p["stackLevel"] == new["stackLevel"]
                        and p["chargingProfilePurpose"] == new["chargingProfilePurpose"]
                    )
                )
            ]
            if self.plugged or new["chargingProfilePurpose"] != "TxProfile":
                self.profiles.append(new)
                return {"status": "Accepted"}, None
            return {"status": "Rejected", "statusInfo": {"reasonCode": "TxNotFound"}}, None
        if action == "ClearChargingProfile":
            crit = payload.get("chargingProfileCriteria") or {}
            keep = [
                p
                for p in self.profiles
                if not (
                    (payload.get("chargingProfileId") in (None, p["id"]))
                    and crit.get("stackLevel") in (None, p["stackLevel"])
                    and crit.get("chargingProfilePurpose") in (None, p["chargingProfilePurpose"])
                )
            ]
            status = "Accepted" if len(keep) < len(self.profiles) else "Unknown"
            self.profiles = keep
            return {"status": status}, None
        if action == "UpdateDynamicSchedule":
            for p in self.profiles:
                if (
                    p["id"] == payload["chargingProfileId"]
                    and p["chargingProfileKind"] == "Dynamic"
                ):
                    p["chargingSchedule"][0]["chargingSchedulePeriod"][0].update(
                        payload["scheduleUpdate"]
                    )
                    return {"status": "Accepted"}, None
            return {"status": "Rejected"}, None
        if action == "GetChargingProfiles":
            crit = payload.get("chargingProfile") or {}
            found = [
                p
                for p in self.profiles
                if crit.get("stackLevel") in (None, p["stackLevel"])
                and crit.get("chargingProfilePurpose") in (None, p["chargingProfilePurpose"])
            ]
            if not found:
                return {"status": "NoProfiles"}, None
            report = {
                "requestId": payload["requestId"],
                "chargingLimitSource": "CSO",
                "evseId": 1,
                "chargingProfile": found,
                "tbc": False,
            }
            return {"status": "Accepted"}, self._call("ReportChargingProfiles", report)
        return {}, None
