"""The stable event codes of the edge gateway: one list, imported by control, station, uplink
and the installer docs.

A code's *name* is its wire and log form and never changes meaning; new codes are appended.
:data:`EVENT_CODES` fixes the order used by the control process's binary snapshot, so codes
may only be appended to it, never reordered or removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["EVENT_CODES", "EVENT_HELP", "EventCode", "EventHelp", "code_from_index", "index_of"]


class EventCode(StrEnum):
    """What the gateway logs and publishes when something safety-relevant happens."""

    # trips raised by the control loop (0 W at once, contactor open)
    GROUND_FAULT = "GROUND_FAULT"
    OVER_TEMP = "OVER_TEMP"
    DC_OVER_VOLTAGE = "DC_OVER_VOLTAGE"
    AC_OVER_VOLTAGE = "AC_OVER_VOLTAGE"
    AC_UNDER_VOLTAGE = "AC_UNDER_VOLTAGE"
    MODULE_FAULT = "MODULE_FAULT"
    GRID_FREQ_OUT_OF_RANGE = "GRID_FREQ_OUT_OF_RANGE"
    SENSOR_MISMATCH = "SENSOR_MISMATCH"
    SENSOR_FAULT = "SENSOR_FAULT"
    MODULE_COMM_LOST = "MODULE_COMM_LOST"
    # ramped stops raised by the control loop
    LEASE_EXPIRED = "LEASE_EXPIRED"
    COMMS_LOSS_FAILSAFE = "COMMS_LOSS_FAILSAFE"
    SOC_FLOOR_REACHED = "SOC_FLOOR_REACHED"
    SOC_CEILING_REACHED = "SOC_CEILING_REACHED"
    EV_DISCONNECTED = "EV_DISCONNECTED"
    SUPERVISOR_LOST = "SUPERVISOR_LOST"
    # recoveries
    TRIP_CLEARED = "TRIP_CLEARED"
    FAILSAFE_CLEARED = "FAILSAFE_CLEARED"
    # raised by the station (OCPP / ISO 15118 side)
    EV_COMM_TIMEOUT = "EV_COMM_TIMEOUT"
    OCPP_MSG_TIMEOUT = "OCPP_MSG_TIMEOUT"
    # raised by the daemon
    CONTROL_LOOP_STALLED = "CONTROL_LOOP_STALLED"
    CONTROL_PROCESS_EXITED = "CONTROL_PROCESS_EXITED"
    # comms-loss envelope (appended: the wire order is append-only)
    COMMS_LOSS_RAMP = "COMMS_LOSS_RAMP"
    COMMS_LOSS_RECOVERED = "COMMS_LOSS_RECOVERED"
    COMMS_LOSS_OPEN_UNDER_LOAD = "COMMS_LOSS_OPEN_UNDER_LOAD"


#: Append-only order used on the control process's wire (index <-> code).
EVENT_CODES: tuple[EventCode, ...] = tuple(EventCode)

_INDEX = {code: i for i, code in enumerate(EVENT_CODES)}

#: Trips the control loop latches for these module fault codes (``StageMeasurement.faults``).
MODULE_FAULT_CODES = frozenset(
    {
        EventCode.GROUND_FAULT,
        EventCode.OVER_TEMP,
        EventCode.DC_OVER_VOLTAGE,
        EventCode.AC_OVER_VOLTAGE,
        EventCode.AC_UNDER_VOLTAGE,
        EventCode.MODULE_FAULT,
    }
)


def index_of(code: EventCode) -> int:
    """The code's position in :data:`EVENT_CODES` (its wire number)."""
    return _INDEX[code]


def code_from_index(index: int) -> EventCode | None:
    """Inverse of :func:`index_of`; a negative index means "no code"."""
    if index < 0:
        return None
    return EVENT_CODES[index]


@dataclass(frozen=True, slots=True)
class EventHelp:
    """What an installer reads for a code: the likely cause and what to do."""

    cause: str
    remedy: str


EVENT_HELP: dict[EventCode, EventHelp] = {
    EventCode.GROUND_FAULT: EventHelp(
        "The power module reports an insulation / ground fault (SunSpec 701 Alrm bit 0).",
        "Leave the charger de-energized; check the cable, the vehicle inlet and the RCD; "
        "the trip clears only when the module no longer reports it and a new lease arrives.",
    ),
    EventCode.OVER_TEMP: EventHelp(
        "The power module reports over-temperature (Alrm bit 7).",
        "Check ventilation, filters and ambient temperature; the trip clears once the fault "
        "is gone for rearm_delay_s and a new lease arrives.",
    ),
    EventCode.DC_OVER_VOLTAGE: EventHelp(
        "DC link over-voltage reported by the module (Alrm bit 1).",
        "Check the vehicle's DC voltage limits and the module; call the module vendor.",
    ),
    EventCode.AC_OVER_VOLTAGE: EventHelp(
        "Grid over-voltage reported by the module (Alrm bit 10).",
        "Measure the grid voltage at the point of connection; notify the grid operator.",
    ),
    EventCode.AC_UNDER_VOLTAGE: EventHelp(
        "Grid under-voltage reported by the module (Alrm bit 11).",
        "Measure the grid voltage at the point of connection; check the supply cabling.",
    ),
    EventCode.MODULE_FAULT: EventHelp(
        "The module is in FAULT (InvSt = 6) or reports an alarm without a specific code.",
        "Read the module's own fault log with the vendor tool.",
    ),
    EventCode.GRID_FREQ_OUT_OF_RANGE: EventHelp(
        "Grid frequency (SunSpec 701 Hz) outside [grid_freq_min_hz, grid_freq_max_hz].",
        "Islanding or a grid disturbance: wait for the grid to recover; if it persists, "
        "check the module's frequency measurement and the configured window.",
    ),
    EventCode.SENSOR_MISMATCH: EventHelp(
        "The i2c power sensor and the module disagree beyond the tolerance for "
        "sensor_mismatch_cycles cycles.",
        "Re-run scripts/calibrate-sensors; check the shunt wiring and the sensor's "
        "calibration file; a real metering error costs money, so do not widen the tolerance "
        "to silence it.",
    ),
    EventCode.SENSOR_FAULT: EventHelp(
        "The i2c power sensor could not be read for sensor_mismatch_cycles cycles.",
        "Check the i2c cabling and address (i2cdetect), the i2c group of the service user.",
    ),
    EventCode.MODULE_COMM_LOST: EventHelp(
        "The power module did not answer on Modbus for module_comm_loss_cycles cycles.",
        "Check the RS-485 cable, termination, baud rate / parity and device_id in "
        "[power_module]; the module's own revert timer has already stopped the output.",
    ),
    EventCode.LEASE_EXPIRED: EventHelp(
        "The setpoint lease ran out without renewal: the station (or the local lease "
        "source) stopped feeding the control loop.",
        "Normal at the end of a dispatch; otherwise check the station's OCPP link and the "
        "daemon's logs for a hung supervisor.",
    ),
    EventCode.COMMS_LOSS_FAILSAFE: EventHelp(
        "No successful exchange with the CSMS for comms_loss_timeout_s: the contactor opened "
        "(the output had ramped to 0 W before, see COMMS_LOSS_RAMP).",
        "Check the uplink (cellular signal, firewall, CSMS certificate); the contactor "
        "closes again only after contact is back and a new lease arrives.",
    ),
    EventCode.SOC_FLOOR_REACHED: EventHelp(
        "The EV's state of charge is within soc_ramp_band_pct of the floor (soc_min_pct + "
        "soc_margin_pct): discharge ramps to 0 W and stays off at or below the floor.",
        "Expected behaviour; lower the floor only with the vehicle owner's agreement.",
    ),
    EventCode.SOC_CEILING_REACHED: EventHelp(
        "The EV's state of charge is within soc_ramp_band_pct of soc_max_pct: charging "
        "ramps to 0 W and stays off at or above soc_max_pct.",
        "Expected behaviour.",
    ),
    EventCode.EV_DISCONNECTED: EventHelp(
        "The module reports no EV connected while a non-zero lease was held.",
        "Expected at unplug; otherwise check the vehicle coupler and the module's ConnSt.",
    ),
    EventCode.SUPERVISOR_LOST: EventHelp(
        "The control process lost its supervisor: it finishes the lease, ramps to 0 W, "
        "opens the contactor and exits.",
        "systemd restarts the daemon; look for the supervisor's crash in the journal.",
    ),
    EventCode.TRIP_CLEARED: EventHelp(
        "A latched trip was cleared (cause gone for rearm_delay_s and a new lease arrived).",
        "None.",
    ),
    EventCode.FAILSAFE_CLEARED: EventHelp(
        "The comms-loss fail-safe was cleared (contact back and a new lease arrived).",
        "None.",
    ),
    EventCode.COMMS_LOSS_RAMP: EventHelp(
        "No CSMS contact for long enough that the output must ramp to 0 W now to be at ~0 A "
        "when the contactor opens, comms_loss_timeout_s after the last contact; the "
        "contactor is still closed.",
        "Check the uplink; contact back before the timeout cancels the ramp "
        "(COMMS_LOSS_RECOVERED), otherwise COMMS_LOSS_FAILSAFE follows.",
    ),
    EventCode.COMMS_LOSS_RECOVERED: EventHelp(
        "CSMS contact came back during the comms-loss ramp, before the contactor opened: the "
        "output returns to the lease at the ramp rate.",
        "None; frequent ones mean a flaky uplink.",
    ),
    EventCode.COMMS_LOSS_OPEN_UNDER_LOAD: EventHelp(
        "At the comms-loss deadline the measured current was above contactor_open_max_a: the "
        "contactor opened anyway (the timeout rules), under load.",
        "The module did not follow the ramp in time: check its lag and module_settle_s, "
        "and that ramp_w_per_s lets the full power ramp down within half the timeout; "
        "inspect the contactor for wear.",
    ),
    EventCode.EV_COMM_TIMEOUT: EventHelp(
        "The EV communication controller (ISO 15118 / PLC link) stopped answering.",
        "Check the charging cable length and PLC (HomePlug Green PHY) link quality; "
        "re-plug the vehicle.",
    ),
    EventCode.OCPP_MSG_TIMEOUT: EventHelp(
        "An OCPP request to the CSMS got no answer within its timeout.",
        "Check the backhaul latency and signal strength; the message stays in the offline "
        "queue and is retried.",
    ),
    EventCode.CONTROL_LOOP_STALLED: EventHelp(
        "The control loop stopped reporting; the daemon stops feeding the systemd watchdog "
        "so systemd restarts it.",
        "Look for CPU starvation or a hung serial driver in the journal; the module's "
        "revert timer stops the output meanwhile.",
    ),
    EventCode.CONTROL_PROCESS_EXITED: EventHelp(
        "The control process exited unexpectedly; the daemon exits with failure.",
        "systemd restarts the daemon; the journal holds the control process's traceback.",
    ),
}
