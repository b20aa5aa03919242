"""The edge gateway (``v2g-gateway``): control loop, hardware drivers, OCPP charging station,
MQTT uplink and the daemon that wires them."""
