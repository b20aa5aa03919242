"""The central VPP core (``vpp-core``): OCPP 2.1 CSMS, live fleet and its database, dispatch,
grid-operator API, telemetry ingest."""
