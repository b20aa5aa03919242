"""Edge hardware drivers: the SunSpec power module (Modbus RTU) and the INA228 power sensor.

Drivers take their transport (a pymodbus client, an smbus2-like bus); only the wiring opens
devices. Register maps are data files; codecs are pure functions.
"""
