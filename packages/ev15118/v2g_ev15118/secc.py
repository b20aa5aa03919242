"""The SECC process: the iso15118 library's SECC with our ``EVSEControllerInterface``.

Runs in ``.venv-iso15118`` (``python -m v2g_ev15118.secc --socket S --interface IF ...``),
started and restarted by the gateway's ``iso15118`` EV link (``v2g_ev15118.link``), which
listens on ``S``. Everything the EV declares goes to the gateway over the wire protocol; each
charge-loop response is built from the gateway's latest :class:`EvseOffer` through
:mod:`v2g_ev15118.mapping`. The library's simulator controller supplies the rest of the
interface (authorisation by EIM, cable check, contactor feedback), overridden here where the
gateway knows better. Logs go to stderr, which the gateway prefixes into its journal.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from v2g_ev15118.channel import GatewayChannel
from v2g_ev15118.mapping import dc_dynamic_limits, evse_target_w
from v2g_ev15118.tls import TlsUnavailableError, watch_tls
from v2g_ev15118.wire import (
    EvParams,
    EvPresent,
    EvseOffer,
    EvStopRequest,
    SessionEnded,
    SessionState,
)

__all__ = ["main"]

log = logging.getLogger("v2g_ev15118.secc")

#: The library's session-ending reasons that are a communication timeout.
_TIMEOUT_MARKERS = ("TimeoutError", "timeout", "Timeout")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="v2g_ev15118.secc", description=__doc__)
    parser.add_argument("--socket", type=Path, required=True, help="the gateway's socket")
    parser.add_argument("--interface", required=True, help="network interface (PLC modem)")
    parser.add_argument("--evse-id", required=True)
    parser.add_argument(
        "--protocols", default="ISO_15118_20_DC,ISO_15118_20_AC,ISO_15118_2,DIN_SPEC_70121"
    )
    parser.add_argument("--rated-w", type=float, required=True, help="the EVSE's rating")
    parser.add_argument("--enforce-tls", action="store_true")
    parser.add_argument("--pki-dir", type=Path, help="the SECC's certificates (TLS)")
    parser.add_argument(
        "--sequence-timeout-s",
        type=float,
        default=60.0,
        help="V2G_SECC_Sequence_Timeout: how long the EV may stay silent (standard: 60 s)",
    )
    return parser.parse_args(argv)


def _sequence_timeout(seconds: float) -> None:
    """The library passes ``Timeouts.V2G_SECC_SEQUENCE_TIMEOUT`` (60 s, the standard's) to
    every response of its -20, -2 and DIN states; a bench may shorten it. Each state module's
    ``Timeouts`` is replaced by a copy with that one value changed."""
    if seconds == 60.0:
        return
    import importlib

    for name in ("iso15118_20_states", "iso15118_2_states", "din_spec_states"):
        module = importlib.import_module(f"iso15118.secc.states.{name}")
        namespace = vars(module)
        values = {m.name: m.value for m in namespace["Timeouts"]}
        values["V2G_SECC_SEQUENCE_TIMEOUT"] = seconds
        namespace["Timeouts"] = type("Timeouts", (), values)


def _library_environment(args: argparse.Namespace) -> None:
    """The library reads its settings from the environment (``secc_settings.Config``)."""
    os.environ.update(
        NETWORK_INTERFACE=args.interface,
        PROTOCOLS=args.protocols,
        AUTH_MODES="EIM",
        SECC_ENFORCE_TLS=str(args.enforce_tls).lower(),
        FREE_CHARGING_SERVICE="false",
        ALLOW_CERT_INSTALL_SERVICE="false",
        MESSAGE_LOG_JSON="false",
        LOG_LEVEL="INFO",
    )
    if args.pki_dir is not None:
        os.environ["PKI_PATH"] = str(args.pki_dir).rstrip("/") + "/"


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _build_controller_class() -> type[Any]:
    """The controller class, built after the library is configured (its modules read the
    environment at import time)."""
    from iso15118.secc.controller.simulator import SimEVSEController
    from iso15118.shared.messages.enums import ControlMode, Protocol, ServiceV20

    class GatewayEvseController(SimEVSEController):
        """``EVSEControllerInterface`` backed by the gateway."""

        def __init__(self, channel: GatewayChannel, *, evse_id: str, rated_w: float) -> None:
            super().__init__()
            self._channel, self._evse_id, self._rated_w = channel, evse_id, rated_w
            self._params: EvParams | None = None
            self._service: str | None = None
            self._control_mode: str | None = None
            self._evcc_id = ""

        # --- identity, services, state machine log -------------------------------------
        async def get_evse_id(self, protocol: Protocol) -> str:
            return self._evse_id

        async def set_present_protocol_state(self, state: Any) -> None:
            protocol = self.get_selected_protocol()
            name = None if protocol is None else protocol.name
            self._evcc_id = str(getattr(state.comm_session, "evcc_id", None) or self._evcc_id)
            self._channel.send(SessionState(type(state).__name__, name))

        async def get_service_parameter_list(self, service_id: int) -> Any:
            """Dynamic control mode with the EV's mobility needs first: the EVCC takes the
            first parameter set it supports (ISO 15118-20 [V20-2663])."""
            offered = await super().get_service_parameter_list(service_id)
            if offered is None:
                return None
            offered.parameter_sets.sort(key=_dynamic_first)
            return offered

        # --- what the EV declared -----------------------------------------------------
        async def send_rated_limits(self) -> None:
            protocol = self.get_selected_protocol()
            if protocol is not None and not protocol.name.startswith("ISO_15118_20"):
                dc = self.evse_data_context.current_type == "DC"
                self._send_params(protocol.name, "charge-only", None, dc=dc)

        async def get_schedule_exchange_params(
            self, selected_energy_service: Any, control_mode: Any, schedule_exchange_req: Any
        ) -> Any:
            result = await super().get_schedule_exchange_params(
                selected_energy_service, control_mode, schedule_exchange_req
            )
            protocol = self.get_selected_protocol()
            self._service = selected_energy_service.service.name
            self._control_mode = ControlMode(control_mode).name.capitalize()
            dc = self._service.startswith("DC")
            self._send_params(protocol.name, self._service, self._control_mode, dc=dc)
            return result

        def _send_params(
            self, protocol: str, service: str, control_mode: str | None, *, dc: bool
        ) -> None:
            limits = self.ev_data_context.rated_limits
            self._params = _ev_params(
                self.ev_data_context,
                limits.dc_limits if dc else limits.ac_limits,
                EvIdentity(self._evcc_id, protocol, service, control_mode),
            )
            self._channel.send(self._params)

        async def send_display_params(self) -> None:
            """Each charge loop: the EV's SoC and power (AC: its own EVPresentActivePower; DC:
            it reports none, so the power the EVSE delivers at the EV's voltage)."""
            ev = self.ev_data_context
            present = ev.present_active_power
            if present is None:
                present = self._offer().present_w
            self._channel.send(
                EvPresent(_number(ev.present_soc), _number(present), _number(ev.present_voltage))
            )

        async def update_data_link(self, action: Any) -> None:
            self._channel.send(EvStopRequest(str(getattr(action, "value", action)).lower()))

        async def session_ended(self, current_state: str, reason: str) -> None:
            code = "EV_COMM_TIMEOUT" if any(m in reason for m in _TIMEOUT_MARKERS) else None
            self._channel.send(SessionEnded(current_state, reason, code))
            self._params = None

        # --- what the EVSE offers -----------------------------------------------------
        async def get_dc_charge_params_v20(self, energy_service: Any) -> Any:
            self.evse_data_context.session_limits.dc_limits.update_from_dict(
                {"max_charge_power": self._rated_w, "max_discharge_power": self._rated_w}
            )
            return await super().get_dc_charge_params_v20(energy_service)

        async def get_dc_charge_loop_params_v20(
            self, control_mode: Any, selected_service: Any
        ) -> Any:
            self._apply_dc_offer(selected_service == ServiceV20.DC_BPT)
            return await super().get_dc_charge_loop_params_v20(control_mode, selected_service)

        async def get_ac_charge_loop_params_v20(
            self, control_mode: Any, selected_service: Any
        ) -> Any:
            self._apply_ac_offer()
            return await super().get_ac_charge_loop_params_v20(control_mode, selected_service)

        async def get_evse_status(self) -> Any:
            """-20: a trip on the charger terminates the EV's session (EVSENotification
            Terminate, no delay); otherwise no notification."""
            protocol = self.get_selected_protocol()
            if not self._offer().emergency or protocol is None:
                return None
            if not protocol.name.startswith("ISO_15118_20"):
                return None
            from iso15118.shared.messages.iso15118_20.common_types import (
                EVSENotification,
                EVSEStatus,
            )

            log.warning("EVSE emergency stop: EVSENotification Terminate to the EV")
            return EVSEStatus(
                notification_max_delay=0, evse_notification=EVSENotification.TERMINATE
            )

        def _offer(self) -> EvseOffer:
            offer = self._channel.offer
            return offer if offer is not None else EvseOffer(0.0, 0.0, 0.0, 0.0, True)

        def _apply_dc_offer(self, bpt: bool) -> None:
            if self._params is None:
                return
            offer = self._offer()
            voltage_v = float(self.ev_data_context.present_voltage or 400.0)
            limits = dc_dynamic_limits(offer, self._params, voltage_v=voltage_v)
            context = self.evse_data_context
            context.session_limits.dc_limits.update_from_dict(
                {
                    "max_charge_power": limits.max_charge_w,
                    "min_charge_power": limits.min_charge_w,
                    "max_charge_current": limits.max_charge_a,
                    "max_discharge_power": limits.max_discharge_w if bpt else 0.0,
                    "min_discharge_power": limits.min_discharge_w if bpt else 0.0,
                    "max_discharge_current": limits.max_discharge_a if bpt else 0.0,
                }
            )
            context.present_voltage = voltage_v
            context.present_current = offer.present_w / voltage_v
            log.info(
                "EVSE target %.0f W (present %.0f W at %.0f V)",
                evse_target_w(offer, self._params),
                offer.present_w,
                voltage_v,
            )

        def _apply_ac_offer(self) -> None:
            if self._params is None:
                return
            offer = self._offer()
            target_w = evse_target_w(offer, self._params)
            self.evse_data_context.session_limits.ac_limits.update_from_dict(
                {"max_charge_power": max(target_w, 0.0), "max_discharge_power": max(-target_w, 0.0)}
            )
            self.evse_data_context.present_active_power = offer.present_w
            log.info("EVSE target %.0f W (present %.0f W)", target_w, offer.present_w)

    return GatewayEvseController


def _dynamic_first(parameter_set: Any) -> tuple[int, int]:
    values = {p.name: p.int_value for p in parameter_set.parameters}
    return (0 if values.get("ControlMode") == 2 else 1, values.get("MobilityNeedsMode", 9))


@dataclass(frozen=True, slots=True)
class EvIdentity:
    """Who the EV is and what it negotiated."""

    evcc_id: str
    protocol: str
    service: str
    control_mode: str | None


def _ev_params(ev: Any, limits: Any, who: EvIdentity) -> EvParams:
    """The EV's declared limits (rated: ChargeParameterDiscovery) and needs."""
    return EvParams(
        evcc_id=who.evcc_id,
        protocol=who.protocol,
        service=who.service,
        control_mode=who.control_mode,
        max_charge_w=float(limits.max_charge_power or 0.0),
        min_charge_w=float(limits.min_charge_power or 0.0),
        max_discharge_w=float(getattr(limits, "max_discharge_power", None) or 0.0),
        min_discharge_w=float(getattr(limits, "min_discharge_power", None) or 0.0),
        battery_capacity_wh=_number(ev.total_battery_capacity),
        target_energy_wh=_number(ev.target_energy_request),
        max_energy_wh=_number(ev.max_energy_request),
        min_energy_wh=_number(ev.min_energy_request),
        max_v2x_energy_wh=_number(ev.max_v2x_energy_request),
        min_v2x_energy_wh=_number(ev.min_v2x_energy_request),
        target_soc_pct=_number(ev.target_soc),
        min_soc_pct=_number(ev.min_soc),
        present_soc_pct=_number(ev.present_soc),
        departure_in_s=_number(ev.departure_time),
    )


async def _serve(args: argparse.Namespace) -> None:
    from iso15118.secc import SECCHandler
    from iso15118.secc.controller.interface import ServiceStatus
    from iso15118.secc.secc_settings import Config

    from v2g_ev15118.codec import warm_codec

    _sequence_timeout(args.sequence_timeout_s)
    codec = warm_codec()
    channel = await GatewayChannel.connect(args.socket)
    controller = _build_controller_class()(channel, evse_id=args.evse_id, rated_w=args.rated_w)
    await controller.set_status(ServiceStatus.STARTING)
    config = Config()
    config.load_envs()
    handler = SECCHandler(exi_codec=codec, evse_controller=controller, config=config)
    async with asyncio.TaskGroup() as tasks:
        secc = tasks.create_task(handler.start(config.iface), name="secc")
        await channel.receive()  # the gateway went away: stop (it restarts us)
        log.warning("the gateway closed the socket; SECC stopping")
        secc.cancel()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    _library_environment(args)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        watch_tls(enforce=args.enforce_tls, pki_dir=args.pki_dir)
    except TlsUnavailableError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    try:
        asyncio.run(_serve(args))
    except asyncio.CancelledError:
        pass


if __name__ == "__main__":
    main()
