"""What every deployable shares: the OCPP 2.1 / 2.0.1 adapter, config loading, PKI, telemetry
payloads and the MQTT link, sd_notify."""
