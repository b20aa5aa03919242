"""Edge control: the setpoint lease, ramp limit, SoC floor and fail-safes (no OCPP here)."""
