"""The ``[dispatch]`` section of ``etc/core.toml``."""

from __future__ import annotations

from pydantic import Field

from v2g_common.config import ConfigSection

__all__ = ["DispatchConfig", "PlannerConfig"]


class PlannerConfig(ConfigSection):
    """Safety margins the planner applies to what vehicles report about themselves."""

    default_min_soc_pct: float = Field(default=20.0, ge=0, le=100)
    # SoC from MeterValues is the BMS's estimate: plan as if it were this much lower.
    soc_uncertainty_pct: float = Field(default=3.0, ge=0, le=50)
    # Efficiency assumed when checking that a vehicle can still recharge before departure.
    recharge_efficiency: float = Field(default=0.9, gt=0, le=1)
    departure_horizon_h: float = Field(default=12.0, gt=0)
    max_charge_soc_pct: float = Field(default=100.0, gt=0, le=100)


class DispatchConfig(ConfigSection):
    """Runner and service settings. Station lists hold station ids."""

    stack_level: int = Field(default=50, ge=0)
    max_offline_duration_s: int = Field(default=30, ge=0)
    control_period_s: float = Field(default=5.0, gt=0)
    profile_id_base: int = Field(default=700_000_000, ge=0)
    legacy_negative_limit_stations: frozenset[str] = frozenset()
    dynamic_profile_stations: frozenset[str] = frozenset()
    dynamic_profiles: bool = False  # Dynamic kind (UpdateDynamicSchedule) for every station
    resume_charging: bool = False  # end with a positive schedule instead of clearing
    # Commands in flight at once. A fan-out to N stations takes at least N / this round trips:
    # with 10k stations on 150 ms links, 1000 needs 1.9 s, 4000 under 1 s
    # (benchmarks/dispatch_fanout.py --rtt-ms 150 --command-concurrency ...).
    command_concurrency: int = Field(default=4000, ge=1)
    command_timeout_s: float = Field(default=10.0, gt=0)
    # Background survey of connected stations' installed profiles (GetChargingProfiles), so a
    # station's first dispatch need not read them; well below command_concurrency so it never
    # crowds out a running dispatch's commands.
    profile_survey_interval_s: float = Field(default=5.0, gt=0)
    profile_survey_concurrency: int = Field(default=200, ge=1)
    clear_attempts: int = Field(default=3, ge=1)
    # aFRR services: an operator setpoint stream (every ~4 s) silent this long makes the core
    # send the stations signal 0 itself (they also drop a signal older than their own
    # [station] afrr_signal_valid_for_s).
    afrr_stale_after_s: float = Field(default=12.0, gt=0)
    # After the window, wait this long at most for meter samples taken at or after its end.
    final_meter_wait_s: float = Field(default=15.0, ge=0)
    setpoint_deadband_w: float = Field(default=200.0, ge=0)
    # ... unless the setpoints' summed drift exceeds this share of the requested power.
    fleet_deadband_frac: float = Field(default=0.01, ge=0)
    # Closed loop: energy behind/ahead of target is recovered over this horizon, and the
    # correction is capped at this fraction of the requested power; above the target, the
    # request's tracking contract bounds it further (DispatchRequest.overshoot_frac).
    catch_up_horizon_s: float = Field(default=60.0, gt=0)
    max_correction_frac: float = Field(default=0.25, ge=0, le=1)
    # A vehicle delivering less than this share of its setpoint after the grace period is
    # planned at what it actually delivers.
    under_delivery_ratio: float = Field(default=0.7, ge=0, le=1)
    under_delivery_grace_s: float = Field(default=20.0, ge=0)
    max_rejoins: int = Field(default=2, ge=0)  # per session and dispatch, after offline/errors
    stale_after_s: float = Field(default=90.0, gt=0)
    ramp_in_s: float = Field(default=30.0, ge=0)
    tracking_uncertainty_pct: float = Field(default=5.0, ge=0, le=100)
    max_start_in_past_s: float = Field(default=60.0, ge=0)
    max_duration_s: float = Field(default=86_400.0, gt=0)
    station_limit_w: dict[str, float] = Field(default_factory=dict)
    site_limit_w: dict[str, float] = Field(default_factory=dict)
    # After a core restart, a dispatch still inside its window is taken back (re-planned on
    # the reconnected fleet; its report covers the outage); false, or past its window: every
    # profile it sent is cleared as its station reconnects, and it closes as "interrupted".
    resume_after_restart: bool = True
    # A dispatch taken back waits at most this long for its stations to reconnect and report.
    resume_wait_s: float = Field(default=15.0, ge=0)
    # An interrupted dispatch retries its clears this often, and gives up on a station this
    # long after the restart or the profile's validTo, whichever is later.
    interrupted_clear_retry_s: float = Field(default=1.0, gt=0)
    interrupted_clear_for_s: float = Field(default=600.0, ge=0)
    # A restarted core serves the reports of this many of the newest ended dispatches again
    # (rebuilt from the journal; older ones stay in the database).
    reports_kept_after_restart: int = Field(default=200, ge=0)
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
