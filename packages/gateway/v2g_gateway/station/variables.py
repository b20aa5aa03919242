"""The standard components and variables this station exposes (OCPP 2.1 part 2 appendix,
"Standardized components and variables"), bound to ``[station]`` where they overlap.

Writable (ReadWrite; a write is persisted and survives a restart):

=================================================  =====================================
OCPPCommCtrlr.HeartbeatInterval                    heartbeat_interval_s (the BootNotification
                                                   answer sets it too)
OCPPCommCtrlr.MessageAttempts[TransactionEvent]    transaction_message_attempts
OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]  transaction_message_retry_interval_s
OCPPCommCtrlr.WebSocketPingInterval                ws_ping_interval_s (next connection)
SampledDataCtrlr.TxUpdatedInterval                 sampled_data_interval_s
TxCtrlr.EVConnectionTimeOut                        ev_connection_timeout_s
SecurityCtrlr.CertSigningWaitMinimum               cert_signing_wait_minimum_s
SecurityCtrlr.CertSigningRepeatTimes               cert_signing_repeat_times
=================================================  =====================================

Everything else is ReadOnly: identity, security profile, what the station supports (operation
modes, energy-transfer modes, purposes, rate units, stack levels), the transaction start and
stop points, availability states, the EVSEs' rated power and phases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from v2g_gateway.station.config import EvseConfig, StationConfig
from v2g_gateway.station.device_model import Variable, VariableKey
from v2g_gateway.station.profiles import SUPPORTED_MODES, SUPPORTED_PURPOSES
from v2g_gateway.station.settings import StationSettings

__all__ = ["ITEMS_PER_MESSAGE", "StationFacts", "station_variables"]

#: DeviceDataCtrlr.ItemsPerMessage for GetVariables, SetVariables and GetReport.
ITEMS_PER_MESSAGE = 50
_MEASURANDS = (
    "Energy.Active.Import.Register,Energy.Active.Export.Register,"
    "Power.Active.Import,Power.Active.Export,SoC"
)
_MODES = tuple(
    m
    for m in ("Idle", "ChargingOnly", "CentralSetpoint", "LocalFrequency", "CentralFrequency")
    if m in SUPPORTED_MODES
)


@dataclass(frozen=True, slots=True)
class StationFacts:
    """Live values the device model reads from the running station."""

    now: Callable[[], datetime]
    station_state: Callable[[], str]  # ChargingStation.AvailabilityState
    evse_state: Callable[[int], str]  # EVSE / Connector AvailabilityState
    evse_operative: Callable[[int], bool]
    sampled_interval_changed: Callable[[], None]


def _const(value: str) -> Callable[[], str]:
    return lambda: value


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def station_variables(
    config: StationConfig, settings: StationSettings, facts: StationFacts
) -> list[Variable]:
    variables = [
        *_station(config, facts),
        *_comm(settings),
        *_sampled(settings, facts),
        *_smart_charging(config),
        *_security(config, settings),
        *_tx_and_auth(settings),
        *_device_data(),
    ]
    for evse in config.evses:
        variables.extend(_evse(evse, facts))
    return variables


def _ro(
    component: str, name: str, data_type: str, value: str, *, unit: str | None = None
) -> Variable:
    """A read-only variable with a fixed value."""
    return Variable(
        VariableKey(component, name), data_type, _const(value), unit=unit, constant=True
    )


def _station(config: StationConfig, facts: StationFacts) -> list[Variable]:
    cs = "ChargingStation"
    return [
        Variable(VariableKey(cs, "AvailabilityState"), "OptionList", facts.station_state),
        Variable(VariableKey(cs, "Available"), "boolean", _const("true")),
        _ro(cs, "Model", "string", config.model),
        _ro(cs, "VendorName", "string", config.vendor_name),
        _ro(cs, "SupplyPhases", "integer", str(max(e.phases for e in config.evses))),
        Variable(
            VariableKey("ClockCtrlr", "DateTime"), "dateTime", lambda: facts.now().isoformat()
        ),
        _ro("ClockCtrlr", "TimeSource", "SequenceList", "NTP"),
    ]


def _comm(s: StationSettings) -> list[Variable]:
    comm = "OCPPCommCtrlr"
    tx = "TransactionEvent"

    def heartbeat(v: str) -> None:
        s.heartbeat_interval_s = float(v)

    def attempts(v: str) -> None:
        s.transaction_message_attempts = int(v)

    def attempt_interval(v: str) -> None:
        s.transaction_message_retry_interval_s = float(v)

    def ping(v: str) -> None:
        s.ws_ping_interval_s = float(v)

    return [
        Variable(
            VariableKey(comm, "HeartbeatInterval"),
            "integer",
            lambda: _number(s.heartbeat_interval_s),
            heartbeat,
            unit="s",
            min_limit=1,
        ),
        Variable(
            VariableKey(comm, "MessageAttempts", variable_instance=tx),
            "integer",
            lambda: str(s.transaction_message_attempts),
            attempts,
            min_limit=1,
            max_limit=100,
        ),
        Variable(
            VariableKey(comm, "MessageAttemptInterval", variable_instance=tx),
            "integer",
            lambda: _number(s.transaction_message_retry_interval_s),
            attempt_interval,
            unit="s",
            min_limit=0,
            max_limit=86400,
        ),
        Variable(
            VariableKey(comm, "WebSocketPingInterval"),
            "integer",
            lambda: _number(s.ws_ping_interval_s),
            ping,
            unit="s",
            min_limit=1,
            max_limit=3600,
            reboot_required=True,
        ),
        _ro(comm, "UnlockOnEVSideDisconnect", "boolean", "false"),
        _ro(comm, "ResetRetries", "integer", "0"),
    ]


def _sampled(s: StationSettings, facts: StationFacts) -> list[Variable]:
    sampled = "SampledDataCtrlr"

    def interval(v: str) -> None:
        s.sampled_data_interval_s = float(v)
        facts.sampled_interval_changed()

    return [
        _ro(sampled, "Enabled", "boolean", "true"),
        Variable(
            VariableKey(sampled, "TxUpdatedInterval"),
            "integer",
            lambda: _number(s.sampled_data_interval_s),
            interval,
            unit="s",
            min_limit=1,
        ),
        _ro(sampled, "TxStartedMeasurands", "MemberList", _MEASURANDS),
        _ro(sampled, "TxUpdatedMeasurands", "MemberList", _MEASURANDS),
        _ro(sampled, "TxEndedMeasurands", "MemberList", _MEASURANDS),
        _ro(sampled, "TxEndedInterval", "integer", "0", unit="s"),
    ]


def _smart_charging(config: StationConfig) -> list[Variable]:
    sc = "SmartChargingCtrlr"
    return [
        _ro(sc, "Enabled", "boolean", "true"),
        _ro(sc, "Available", "boolean", "true"),
        _ro(sc, "RateUnit", "MemberList", "A,W"),
        _ro(sc, "PeriodsPerSchedule", "integer", "1024"),
        _ro(sc, "ProfileStackLevel", "integer", "1000"),
        _ro(sc, "PhasesSupported", "integer", str(max(e.phases for e in config.evses))),
        _ro(sc, "ExternalControlSignalsEnabled", "boolean", "false"),
        _ro(sc, "NotifyChargingLimitWithSchedules", "boolean", "false"),
        _ro(sc, "SupportsDynamicProfiles", "boolean", "true"),
        _ro(sc, "SupportedAdditionalPurposes", "MemberList", ""),
        _ro(sc, "ChargingProfilePurposes", "MemberList", ",".join(sorted(SUPPORTED_PURPOSES))),
    ]


def _security(config: StationConfig, s: StationSettings) -> list[Variable]:
    sec = "SecurityCtrlr"

    def wait(v: str) -> None:
        s.cert_signing_wait_minimum_s = float(v)

    def repeat(v: str) -> None:
        s.cert_signing_repeat_times = int(v)

    return [
        _ro(sec, "SecurityProfile", "integer", str(config.security_profile)),
        _ro(sec, "Identity", "string", config.identity),
        _ro(sec, "OrganizationName", "string", config.organization_name),
        _ro(sec, "CertificateEntries", "integer", "1" if config.security_profile == 3 else "0"),
        Variable(
            VariableKey(sec, "CertSigningWaitMinimum"),
            "integer",
            lambda: _number(s.cert_signing_wait_minimum_s),
            wait,
            unit="s",
            min_limit=1,
        ),
        Variable(
            VariableKey(sec, "CertSigningRepeatTimes"),
            "integer",
            lambda: str(s.cert_signing_repeat_times),
            repeat,
            min_limit=0,
            max_limit=100,
        ),
    ]


def _tx_and_auth(s: StationSettings) -> list[Variable]:
    def timeout(v: str) -> None:
        s.ev_connection_timeout_s = float(v)

    return [
        _ro("TxCtrlr", "TxStartPoint", "MemberList", "EVConnected"),
        _ro("TxCtrlr", "TxStopPoint", "MemberList", "EVConnected"),
        _ro("TxCtrlr", "StopTxOnEVSideDisconnect", "boolean", "true"),
        _ro("TxCtrlr", "StopTxOnInvalidId", "boolean", "false"),
        Variable(
            VariableKey("TxCtrlr", "EVConnectionTimeOut"),
            "integer",
            lambda: _number(s.ev_connection_timeout_s),
            timeout,
            unit="s",
            min_limit=1,
        ),
        # A plugged-in EV charges without an idToken (TxStartPoint EVConnected); a remote
        # start's idToken is recorded, not sent to Authorize.
        _ro("AuthCtrlr", "Enabled", "boolean", "false"),
        _ro("AuthCtrlr", "AuthorizeRemoteStart", "boolean", "false"),
        _ro("AuthCtrlr", "LocalAuthorizeOffline", "boolean", "false"),
        _ro("AuthCtrlr", "LocalPreAuthorize", "boolean", "false"),
    ]


def _device_data() -> list[Variable]:
    items = str(ITEMS_PER_MESSAGE)
    return [
        Variable(
            VariableKey("DeviceDataCtrlr", "ItemsPerMessage", variable_instance=kind),
            "integer",
            _const(items),
            constant=True,
        )
        for kind in ("GetReport", "GetVariables", "SetVariables")
    ]


def _evse(evse: EvseConfig, facts: StationFacts) -> list[Variable]:
    e = evse.id
    modes = "DC,DC_BPT" if evse.current_type == "DC" else "AC_three_phase,AC_BPT"

    def key(component: str, name: str, connector: int | None = None) -> VariableKey:
        return VariableKey(component, name, evse_id=e, connector_id=connector)

    state = lambda: facts.evse_state(e)  # noqa: E731
    available = lambda: _bool(facts.evse_operative(e))  # noqa: E731
    return [
        Variable(key("EVSE", "AvailabilityState"), "OptionList", state),
        Variable(key("EVSE", "Available"), "boolean", available),
        Variable(
            key("EVSE", "Power"),
            "decimal",
            _const(_number(evse.max_power_w)),
            unit="W",
            max_limit=evse.max_power_w,
            constant=True,
        ),
        Variable(key("EVSE", "SupplyPhases"), "integer", _const(str(evse.phases)), constant=True),
        Variable(key("Connector", "AvailabilityState", evse.connector_id), "OptionList", state),
        Variable(key("Connector", "Available", evse.connector_id), "boolean", available),
        Variable(
            key("Connector", "SupplyPhases", evse.connector_id),
            "integer",
            _const(str(evse.phases)),
            constant=True,
        ),
        Variable(key("V2XChargingCtrlr", "Enabled"), "boolean", _const("true"), constant=True),
        Variable(key("V2XChargingCtrlr", "Available"), "boolean", _const("true"), constant=True),
        Variable(
            key("V2XChargingCtrlr", "SupportedEnergyTransferModes"),
            "MemberList",
            _const(modes),
            constant=True,
        ),
        Variable(
            key("V2XChargingCtrlr", "SupportedOperationModes"),
            "MemberList",
            _const(",".join(_MODES)),
            constant=True,
        ),
    ]
