"""The ``[control]`` section: loop rate, ramp, limits, SoC window and the fail-safe timings.

The SoC floor is ``soc_min_pct + soc_margin_pct`` (the EV's minimum plus our buffer): no
discharge at or below it, ever. Within ``soc_ramp_band_pct`` above the floor (and below
``soc_max_pct``) the loop ramps the power to 0 W so that it normally arrives before the hard
limit has to cut it.

The comms-loss fail-safe opens the contactor within one period of ``comms_loss_timeout_s``
after the last CSMS contact (at the last loop step before it) and starts its ramp to 0 W early
enough that the output is at ~0 A (``contactor_open_max_a``) by then: ramp time from the
present power, plus the module's settle time (``module_settle_s``, or the longer one the loop
measures on its own ramps, up to ``module_settle_max_s``), plus two periods, plus
``comms_loss_margin_s`` (late cycles on a loaded CPU, a module slower on the way down than on
the way up).

Frequency response (a LocalFrequency lease) moves at ``freq_ramp_w_per_s``, the power
module's own ramp, not the comfort ramp; run the loop at ``period_s`` <= 0.05 (20 Hz) for the
sub-second products (Dynamic Containment, FFR).

Everything except ``period_s`` and the ``realtime_*`` keys is re-read on SIGHUP.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from v2g_common.config import ConfigSection

__all__ = ["ControlSection"]


class ControlSection(ConfigSection):
    """Limits and timings the control loop enforces whatever the CSMS asks for."""

    period_s: float = Field(default=0.1, ge=0.002, le=1.0)
    ramp_w_per_s: float = Field(default=2000.0, gt=0)
    freq_ramp_w_per_s: float = Field(default=50000.0, gt=0)
    site_max_import_w: float = Field(default=11000.0, ge=0)
    site_max_export_w: float = Field(default=11000.0, ge=0)
    soc_min_pct: float = Field(default=20.0, ge=0, le=100)
    soc_margin_pct: float = Field(default=2.0, ge=0, le=50)
    soc_max_pct: float = Field(default=100.0, ge=0, le=100)
    soc_ramp_band_pct: float = Field(default=1.0, ge=0, le=50)
    comms_loss_timeout_s: float = Field(default=30.0, gt=0)
    contactor_open_max_a: float = Field(default=0.5, gt=0)
    module_settle_s: float = Field(default=1.0, ge=0)
    module_settle_max_s: float = Field(default=5.0, gt=0)
    comms_loss_margin_s: float = Field(default=1.0, ge=0)
    grid_freq_min_hz: float = Field(default=47.0, gt=0)
    grid_freq_max_hz: float = Field(default=63.0, gt=0)
    sensor_tolerance_w: float = Field(default=300.0, ge=0)
    sensor_tolerance_pct: float = Field(default=5.0, ge=0, le=100)
    sensor_mismatch_cycles: int = Field(default=10, ge=1)
    module_comm_loss_cycles: int = Field(default=5, ge=1)
    rearm_delay_s: float = Field(default=10.0, ge=0)
    revert_timeout_s: float = Field(default=5.0, gt=0, le=3600)
    revert_refresh_s: float = Field(default=60.0, gt=0)
    realtime_priority: int = Field(default=0, ge=0, le=99)
    realtime_mlockall: bool = False

    @model_validator(mode="after")
    def _windows_are_ordered(self) -> ControlSection:
        if self.soc_min_pct + self.soc_margin_pct >= self.soc_max_pct:
            raise ValueError("soc_min_pct + soc_margin_pct must be below soc_max_pct")
        if self.grid_freq_min_hz >= self.grid_freq_max_hz:
            raise ValueError("grid_freq_min_hz must be below grid_freq_max_hz")
        return self
