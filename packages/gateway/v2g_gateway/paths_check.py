"""Does every file and device the configuration names exist, with the access we need? Each
problem is ``(dotted key, reason)``, as configuration errors are.

Used by ``v2g-gateway --check-config`` (everything) and by the control process before it
opens its devices (:func:`device_problems`), so a missing ``/dev/i2c-1`` is reported as
``power_sensor.i2c_bus`` and not as a bare errno. Nothing is opened: devices are checked with
``stat`` and ``access``, files by the access the daemon will ask for. (Root passes every
permission check; the type and existence checks still hold.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from v2g_gateway.config import GatewayConfig
    from v2g_gateway.devices import ControlProcessConfig

__all__ = ["Problem", "device_problems", "path_problems", "service_problems"]

Problem = tuple[str, str]
_RW = os.R_OK | os.W_OK


def _missing(path: Path) -> str | None:
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        return f"{path} does not exist" + (
            f" (nor does {path.parent})" if parent != path.parent else ""
        )
    return None


def char_device(key: str, path: Path) -> list[Problem]:
    """A character device we read and write (serial port, i2c bus, GPIO chip)."""
    why = _missing(path)
    if why is None and not stat.S_ISCHR(path.stat().st_mode):
        why = f"{path} is not a character device"
    if why is None and not os.access(path, _RW):
        why = f"{path} is not readable and writable by this user (uid {os.getuid()})"
    return [(key, why)] if why else []


def readable_file(key: str, path: Path) -> list[Problem]:
    """A file we read (certificate, key, register map)."""
    why = _missing(path)
    if why is None and not path.is_file():
        why = f"{path} is not a regular file"
    if why is None and not os.access(path, os.R_OK):
        why = f"{path} is not readable by this user (uid {os.getuid()})"
    return [(key, why)] if why else []


def writable_file(key: str, path: Path) -> list[Problem]:
    """A file we write (GPIO sysfs value)."""
    problems = readable_file(key, path)
    if not problems and not os.access(path, os.W_OK):
        problems = [(key, f"{path} is not writable by this user (uid {os.getuid()})")]
    return problems


def creatable_directory(key: str, path: Path) -> list[Problem]:
    """A directory we create files in, or whose nearest existing ancestor we may create it
    in (the station's store and the outbox make their directories)."""
    existing = next((p for p in (path, *path.parents) if p.exists()), path)
    if not existing.is_dir():
        return [(key, f"{existing} is not a directory")]
    if not os.access(existing, _RW | os.X_OK):
        return [(key, f"{existing} is not writable by this user (uid {os.getuid()})")]
    return []


def socket_directory(key: str, socket: Path) -> list[Problem]:
    """The directory a socket another process creates will appear in: it must be there."""
    why = _missing(socket.parent)
    if why is None and not socket.parent.is_dir():
        why = f"{socket.parent} is not a directory"
    if why is None and not os.access(socket.parent, os.X_OK):
        why = f"{socket.parent} is not searchable by this user (uid {os.getuid()})"
    return [(key, why)] if why else []


def device_problems(cfg: ControlProcessConfig, *, ev_link_kind: str = "none") -> list[Problem]:
    """The control process's devices: the power module's serial port and register map, the
    sensor's i2c bus and calibration, the contactor's line, the simulator's socket directory."""
    port = cfg.power_module.port
    # a pyserial URL (socket://, rfc2217://) names no device file
    problems = [] if "://" in port else char_device("power_module.port", Path(port))
    if cfg.power_module.map_file is not None:
        problems += readable_file("power_module.map_file", cfg.power_module.map_file)
    sensor = cfg.power_sensor
    if sensor.kind == "ina228":
        problems += char_device("power_sensor.i2c_bus", Path(f"/dev/i2c-{sensor.i2c_bus}"))
    if sensor.calibration_file.exists():  # absent: identity calibration, by design
        problems += readable_file("power_sensor.calibration_file", sensor.calibration_file)
    contactor = cfg.contactor
    if contactor.kind == "gpiod":
        problems += char_device("contactor.chip", contactor.chip)
    elif contactor.kind == "gpio_sysfs":
        problems += writable_file("contactor.gpio_value_path", contactor.gpio_value_path)
    if "simulated" in (sensor.kind, contactor.kind, ev_link_kind):
        # v2g-sim creates the socket when it starts; its directory must be there already
        problems += socket_directory("simulator.socket", cfg.simulator.socket)
    return problems


def path_problems(config: GatewayConfig) -> list[Problem]:
    """Everything ``config`` names: the devices, the station's and the uplink's certificates
    and keys, and the directories their stores live in."""
    devices = device_problems(config.control_process(), ev_link_kind=config.ev_link.kind)
    return devices + service_problems(config) + ev_link_problems(config)


def ev_link_problems(config: GatewayConfig) -> list[Problem]:
    """``kind = "iso15118"``: the SECC's interpreter, its network interface, and the
    directory the gateway's socket for it goes in."""
    if config.ev_link.kind != "iso15118":
        return []
    secc = config.ev_link.iso15118
    problems = readable_file("ev_link.iso15118.python", secc.python)
    if not problems and not os.access(secc.python, os.X_OK):
        problems = [("ev_link.iso15118.python", f"{secc.python} is not executable")]
    if not Path("/sys/class/net", secc.interface).exists():
        problems.append(("ev_link.iso15118.interface", f"no network interface {secc.interface}"))
    return problems + creatable_directory("ev_link.iso15118.socket", secc.socket.parent)


def service_problems(config: GatewayConfig) -> list[Problem]:
    """The station's and the uplink's certificates, keys and store directories: checked by
    the daemon at start-up too (a missing key is the installer's to fix, not a restart's)."""
    problems: list[Problem] = []
    station = config.station
    if station is not None:
        for name in ("ca_cert", "client_cert", "client_key"):
            path = getattr(station, name)
            if path is not None:
                problems += readable_file(f"station.{name}", path)
        problems += creatable_directory("station.state_dir", station.state_dir)
    uplink = config.uplink
    if uplink is not None:
        for name in ("ca_file", "cert_file", "key_file"):
            problems += readable_file(f"uplink.{name}", getattr(uplink, name))
        problems += creatable_directory("uplink.outbox_path", uplink.outbox_path.parent)
    return problems
