"""The EV + power-module simulator (``v2g-sim``).

``module`` (the steppable physical model), ``ev`` (the EV and its V2X needs), ``charger``
(model + SunSpec image + INA228 + EvLink/Contactor), ``sunspec_image`` (the register map
served), ``modbus_server`` (pymodbus SimDevice on a serial line), ``i2c_bus`` (simulated
INA228s), ``serial_link`` (NullModem pty pairs), ``control`` (the JSON-lines control socket),
``runtime`` (everything running together) and ``cli``.
"""
