"""The simulated EV's communication controller: the iso15118 library's EVCC, configured from
the simulated EV (``v2g_sim.ev.EvSpec``'s fields, written as JSON by ``v2g_sim.ev15118``).

Runs in ``.venv-iso15118`` (``python -m v2g_ev15118.evcc --config EV.json``). The EV's battery
is the simulator's: each charge-loop request reads the simulated charger's SoC and power over
the simulator's control socket (plain JSON lines; nothing of v2g-sim is imported), and an
unplugged EV ends the session. Each charge-loop response's EVSE values are what the EV is told
to do; the EV logs them and writes its view to ``status_file`` (one JSON object, replaced
atomically) for tests and tools.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EvccSettings", "main"]

log = logging.getLogger("v2g_ev15118.evcc")


@dataclass(frozen=True, slots=True)
class EvccSettings:
    """The simulated EV as its EVCC presents it (powers are magnitudes in W)."""

    interface: str
    sim_socket: str
    device_id: int
    status_file: str
    ev_id: str = "EV-SIM-1"
    battery_capacity_wh: float = 60_000.0
    min_soc_pct: float = 20.0
    max_soc_pct: float = 95.0
    target_soc_pct: float | None = 80.0
    max_charge_w: float = 11_000.0
    min_charge_w: float = 1_400.0
    max_discharge_w: float = 10_000.0
    min_discharge_w: float = 1_400.0
    departure_in_s: float | None = 8 * 3600.0
    voltage_v: float = 400.0
    #: "DC_BPT", "AC_BPT", "DC" or "AC" (-20); what a -2/DIN EV asks is charge only.
    service: str = "DC_BPT"
    protocols: list[str] = field(default_factory=lambda: ["ISO_15118_20_DC"])
    use_tls: bool = False
    #: the library's PKI_PATH: iso15118_2/certs/v2gRootCACert.pem, the V2G root it trusts
    #: (``provision-pki iso15118`` writes one in iso15118/evcc/)
    pki_dir: str | None = None
    charge_loop_delay_s: float = 0.2


@dataclass(slots=True)
class EvView:
    """What the EV knows now (written to ``status_file``)."""

    state: str = "starting"
    protocol: str | None = None
    target_w: float | None = None
    present_w: float = 0.0
    soc_pct: float | None = None
    loops: int = 0
    connected: bool = True
    updated_at: float = 0.0


def _sim_status(settings: EvccSettings) -> dict[str, Any]:
    """The simulated charger's status (its battery is this EV's)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        sock.connect(settings.sim_socket)
        sock.sendall(
            json.dumps({"cmd": "status", "device_id": settings.device_id}).encode() + b"\n"
        )
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return dict(json.loads(data))


def _decimal(value: Any) -> float | None:
    return None if value is None else float(value.get_decimal_value())


def _build_controller_class() -> type[Any]:
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.shared.messages.datatypes import (
        PhysicalValue,
        PVEVEnergyCapacity,
        PVEVMaxPowerLimit,
    )
    from iso15118.shared.messages.enums import Protocol
    from iso15118.shared.messages.iso15118_20.ac import (
        ACChargeParameterDiscoveryReqParams,
        BPTACChargeParameterDiscoveryReqParams,
        BPTDynamicACChargeLoopReqParams,
        DynamicACChargeLoopReqParams,
    )
    from iso15118.shared.messages.iso15118_20.common_messages import (
        DynamicScheduleExchangeReqParams,
    )
    from iso15118.shared.messages.iso15118_20.common_types import (
        DisplayParameters,
        RationalNumber,
    )
    from iso15118.shared.messages.iso15118_20.dc import (
        BPTDCChargeParameterDiscoveryReqParams,
        BPTDynamicDCChargeLoopReqParams,
        DCChargeParameterDiscoveryReqParams,
        DynamicDCChargeLoopReqParams,
    )

    def rational(x: float) -> Any:
        return RationalNumber.get_rational_repr(x)

    class SimulatedEvController(SimEVController):
        """``EVControllerInterface`` of the simulated EV."""

        def __init__(self, library_config: Any, settings: EvccSettings) -> None:
            super().__init__(library_config)
            self.settings, self.view = settings, EvView()
            self._declare_v2(settings)
            self._refresh()

        def _declare_v2(self, s: EvccSettings) -> None:
            """The ISO 15118-2 / DIN charge parameters (the library's sim has its own)."""
            power = PhysicalValue.get_exponent_value_repr(s.max_charge_w)
            capacity = PhysicalValue.get_exponent_value_repr(s.battery_capacity_wh)
            self.dc_ev_charge_params.dc_max_power_limit = PVEVMaxPowerLimit(
                multiplier=power[0], value=power[1], unit="W"
            )
            self.dc_ev_charge_params.dc_energy_capacity = PVEVEnergyCapacity(
                multiplier=capacity[0], value=capacity[1], unit="Wh"
            )

        # --- the battery (the simulator's) ------------------------------------------
        def _refresh(self) -> None:
            try:
                status = _sim_status(self.settings)
            except (OSError, ValueError) as exc:
                log.warning("simulator status unavailable: %s", exc)
                return
            self.view.connected = bool(status.get("ev_connected"))
            self.view.present_w = float(status.get("power_w") or 0.0)
            if status.get("soc_pct") is not None:
                self.view.soc_pct = float(status["soc_pct"])
                self._soc = round(self.view.soc_pct)  # what the library's -2/DIN status sends
            self.write_status()

        def write_status(self) -> None:
            self.view.updated_at = time.time()
            path = Path(self.settings.status_file)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(self.view)))
            tmp.replace(path)

        def _soc_now(self) -> int:
            return round(self.view.soc_pct if self.view.soc_pct is not None else 50.0)

        def _energy_to(self, pct: float | None) -> float:
            soc = self.view.soc_pct if self.view.soc_pct is not None else 50.0
            return 0.0 if pct is None else (pct - soc) / 100.0 * self.settings.battery_capacity_wh

        # --- what the EV declares -----------------------------------------------------
        async def get_evcc_id(self, protocol: Protocol, iface: str) -> str:
            if protocol in (Protocol.ISO_15118_2, Protocol.DIN_SPEC_70121):
                return str(await super().get_evcc_id(protocol, iface))
            return self.settings.ev_id

        async def get_charge_params_v20(self, selected_service: Any) -> Any:
            s = self.settings
            name = selected_service.service.name
            if name.startswith("AC"):
                ac = ACChargeParameterDiscoveryReqParams(
                    ev_max_charge_power=rational(s.max_charge_w),
                    ev_min_charge_power=rational(s.min_charge_w),
                )
                if name == "AC":
                    return ac
                return BPTACChargeParameterDiscoveryReqParams(
                    **ac.dict(),
                    ev_max_discharge_power=rational(s.max_discharge_w),
                    ev_min_discharge_power=rational(s.min_discharge_w),
                )
            dc = DCChargeParameterDiscoveryReqParams(
                ev_max_charge_power=rational(s.max_charge_w),
                ev_min_charge_power=rational(s.min_charge_w),
                ev_max_charge_current=rational(s.max_charge_w / s.voltage_v),
                ev_min_charge_current=rational(0),
                ev_max_voltage=rational(s.voltage_v * 1.1),
                ev_min_voltage=rational(s.voltage_v * 0.8),
            )
            if name == "DC":
                return dc
            return BPTDCChargeParameterDiscoveryReqParams(
                **dc.dict(),
                ev_max_discharge_power=rational(s.max_discharge_w),
                ev_min_discharge_power=rational(s.min_discharge_w),
                ev_max_discharge_current=rational(s.max_discharge_w / s.voltage_v),
                ev_min_discharge_current=rational(0),
            )

        async def get_dynamic_se_params(self, selected_energy_service: Any) -> Any:
            s = self.settings
            return DynamicScheduleExchangeReqParams(
                departure_time=None if s.departure_in_s is None else int(s.departure_in_s),
                min_soc=round(s.min_soc_pct),
                target_soc=None if s.target_soc_pct is None else round(s.target_soc_pct),
                ev_target_energy_request=rational(max(self._energy_to(s.target_soc_pct), 0.0)),
                ev_max_energy_request=rational(self._energy_to(s.max_soc_pct)),
                ev_min_energy_request=rational(self._energy_to(s.min_soc_pct)),
                ev_max_v2x_energy_request=rational(self._energy_to(s.max_soc_pct)),
                ev_min_v2x_energy_request=rational(self._energy_to(s.min_soc_pct)),
            )

        async def get_display_params(self) -> Any:
            self._refresh()
            return DisplayParameters(
                present_soc=self._soc_now(),
                min_soc=round(self.settings.min_soc_pct),
                target_soc=None
                if self.settings.target_soc_pct is None
                else round(self.settings.target_soc_pct),
                battery_energy_capacity=rational(self.settings.battery_capacity_wh),
                charging_complete=False,
            )

        async def get_dynamic_dc_charge_loop_params(self) -> Any:
            s = self.settings
            return DynamicDCChargeLoopReqParams(
                ev_target_energy_request=rational(max(self._energy_to(s.target_soc_pct), 0.0)),
                ev_max_energy_request=rational(self._energy_to(s.max_soc_pct)),
                ev_min_energy_request=rational(self._energy_to(s.min_soc_pct)),
                ev_max_charge_power=rational(s.max_charge_w),
                ev_min_charge_power=rational(0),
                ev_max_charge_current=rational(s.max_charge_w / s.voltage_v),
                ev_max_voltage=rational(s.voltage_v * 1.1),
                ev_min_voltage=rational(s.voltage_v * 0.8),
            )

        async def get_bpt_dynamic_dc_charge_loop_params(self) -> Any:
            s = self.settings
            return BPTDynamicDCChargeLoopReqParams(
                **(await self.get_dynamic_dc_charge_loop_params()).dict(),
                ev_max_discharge_power=rational(s.max_discharge_w),
                ev_min_discharge_power=rational(0),
                ev_max_discharge_current=rational(s.max_discharge_w / s.voltage_v),
                ev_max_v2x_energy_request=rational(self._energy_to(s.max_soc_pct)),
                ev_min_v2x_energy_request=rational(self._energy_to(s.min_soc_pct)),
            )

        async def get_ac_charge_loop_params_v20(
            self, control_mode: Any, selected_service: Any
        ) -> Any:
            s = self.settings
            self._refresh()
            dynamic = DynamicACChargeLoopReqParams(
                ev_target_energy_request=rational(max(self._energy_to(s.target_soc_pct), 0.0)),
                ev_max_energy_request=rational(self._energy_to(s.max_soc_pct)),
                ev_min_energy_request=rational(self._energy_to(s.min_soc_pct)),
                ev_max_charge_power=rational(s.max_charge_w),
                ev_min_charge_power=rational(0),
                ev_present_active_power=rational(self.view.present_w),
                ev_present_reactive_power=rational(0),
            )
            if selected_service.name != "AC_BPT":
                return dynamic
            return BPTDynamicACChargeLoopReqParams(
                **dynamic.dict(),
                ev_max_discharge_power=rational(s.max_discharge_w),
                ev_min_discharge_power=rational(0),
                ev_max_v2x_energy_request=rational(self._energy_to(s.max_soc_pct)),
                ev_min_v2x_energy_request=rational(self._energy_to(s.min_soc_pct)),
            )

        async def get_present_voltage(self) -> Any:
            return rational(self.settings.voltage_v)

        async def get_target_voltage(self) -> Any:
            return rational(self.settings.voltage_v)

        # --- the charge loop --------------------------------------------------------
        async def charge_loop_delay(self) -> float:
            return self.settings.charge_loop_delay_s

        async def continue_charging(self) -> bool:
            """Until the cable is pulled (the simulator says so)."""
            self._refresh()
            return self.view.connected

        async def is_charging_complete(self) -> bool:
            return not self.view.connected

        def observe(self, message: Any) -> None:
            """An EVSE charge-loop response: what the EVSE targets now (signed W)."""
            target = _evse_target_w(message)
            if target is None:
                return
            self.view.loops += 1
            self.view.target_w = target
            self.view.state = "ChargeLoop"
            log.info(
                "EV: EVSE target %.0f W, present %.0f W, SoC %s %%",
                target,
                self.view.present_w,
                self.view.soc_pct,
            )
            self.write_status()

    return SimulatedEvController


def _evse_target_w(message: Any) -> float | None:
    """The signed EVSE target of a -20 DC or AC charge-loop response (None: not one)."""
    dc = getattr(message, "bpt_dynamic_dc_charge_loop_res", None) or getattr(
        message, "dynamic_dc_charge_loop_res", None
    )
    if dc is not None:
        discharge = _decimal(getattr(dc, "evse_min_discharge_power", None)) or 0.0
        return -discharge if discharge > 0 else (_decimal(dc.evse_maximum_charge_power) or 0.0)
    ac = getattr(message, "bpt_dynamic_params", None) or getattr(message, "dynamic_params", None)
    if ac is not None and hasattr(ac, "evse_target_active_power"):
        return _decimal(ac.evse_target_active_power)
    return None


def _observe_charge_loops(controller: Any) -> None:
    """Show the controller every charge-loop response the EVCC's states receive (the
    library's EV controller interface has no such hook)."""
    from iso15118.evcc.states import iso15118_20_states as states

    for state in (states.DCChargeLoop, states.ACChargeLoop):
        original = state.process_message

        async def process_message(
            self: Any, message: Any, message_exi: Any = None, _o: Any = original
        ) -> Any:
            controller.observe(message)
            return await _o(self, message, message_exi)

        state.process_message = process_message


def _library_config(settings: EvccSettings) -> Any:
    from iso15118.evcc.evcc_config import EVCCConfig

    config = EVCCConfig(
        supportedProtocols=settings.protocols,
        supportedEnergyServices=[settings.service],
        useTls=settings.use_tls,
        enforceTls=settings.use_tls,
        sdpRetryCycles=5,
        energyTransferMode="DC_extended"
        if settings.service.startswith("DC")
        else "AC_three_phase_core",
    )
    config.load_raw_values()
    return config


async def _run(settings: EvccSettings) -> None:
    from iso15118.evcc import EVCCHandler
    from iso15118.shared.settings import load_shared_settings

    from v2g_ev15118.codec import warm_codec

    load_shared_settings()
    codec = warm_codec()
    library_config = _library_config(settings)
    controller = _build_controller_class()(library_config, settings)
    _observe_charge_loops(controller)
    await EVCCHandler(
        evcc_config=library_config,
        iface=settings.interface,
        exi_codec=codec,
        ev_controller=controller,
    ).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="v2g_ev15118.evcc", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="EvccSettings as JSON")
    args = parser.parse_args(argv)
    settings = EvccSettings(**json.loads(args.config.read_text()))
    os.environ.update(NETWORK_INTERFACE=settings.interface, MESSAGE_LOG_JSON="false")
    if settings.pki_dir is not None:
        os.environ["PKI_PATH"] = settings.pki_dir.rstrip("/") + "/"
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
