"""The GPIO contactor drivers: gpiod (the kernel's character device) against an injected fake
line request, sysfs against a value file, and the wiring that requests the line.

Not tested here: a real ``/dev/gpiochipN``. This machine's kernel has neither GPIOLIB nor
configfs (so no ``gpio-sim`` either) and loads no modules; the request made by
``open_gpiod_contactor`` is checked by recording what it asks libgpiod for.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import gpiod
import pytest
from gpiod.line import Direction, Value

from v2g_gateway import hardware
from v2g_gateway.contactor import ContactorSection, GpiodContactor, SysfsGpioContactor
from v2g_gateway.devices import ControlProcessConfig
from v2g_gateway.hw.errors import ContactorError


class FakeLineRequest:
    """A ``gpiod.LineRequest`` holding output lines: logical values, like the kernel keeps."""

    def __init__(self, offsets: dict[int, Value]) -> None:
        self.values = dict(offsets)
        self.released = False
        self.writes: list[tuple[int, Value]] = []

    def set_value(self, line: int, value: Value) -> None:
        assert not self.released, "set_value on a released request"
        assert isinstance(value, Value)
        self.values[line] = value
        self.writes.append((line, value))

    def get_value(self, line: int) -> Value:
        assert not self.released, "get_value on a released request"
        return self.values[line]

    def release(self) -> None:
        self.released = True


def test_gpiod_close_and_open_drive_the_line_and_read_it_back() -> None:
    request = FakeLineRequest({17: Value.INACTIVE, 4: Value.INACTIVE})
    relay = GpiodContactor(request, 17)
    assert not relay.closed
    relay.close()
    assert request.values[17] is Value.ACTIVE
    assert relay.closed
    relay.open()
    assert request.values[17] is Value.INACTIVE
    assert not relay.closed
    assert request.values[4] is Value.INACTIVE  # other lines untouched


def test_gpiod_reports_what_the_line_says_not_what_was_asked() -> None:
    request = FakeLineRequest({17: Value.INACTIVE})
    relay = GpiodContactor(request, 17)
    relay.close()
    request.values[17] = Value.INACTIVE  # e.g. another consumer or a driver fault
    assert not relay.closed


def test_gpiod_release_opens_the_relay_before_giving_the_line_back() -> None:
    request = FakeLineRequest({17: Value.INACTIVE})
    relay = GpiodContactor(request, 17)
    relay.close()
    relay.release()
    assert request.writes[-1] == (17, Value.INACTIVE)
    assert request.released


@pytest.mark.parametrize("active_low", [False, True])
def test_the_wiring_requests_one_output_line_starting_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, active_low: bool
) -> None:
    asked: dict[str, Any] = {}
    request = FakeLineRequest({5: Value.INACTIVE})

    def request_lines(path: str, config: dict[int, gpiod.LineSettings], consumer: str) -> Any:
        asked.update(path=path, config=config, consumer=consumer)
        return request

    monkeypatch.setattr(gpiod, "request_lines", request_lines)
    section = ContactorSection(
        kind="gpiod", chip=tmp_path / "gpiochip3", line_offset=5, active_low=active_low
    )
    with contextlib.ExitStack() as stack:
        relay = hardware.open_gpiod_contactor(ControlProcessConfig(contactor=section), stack)
        relay.close()
        assert not request.released
    assert request.released  # the stack gave the line back, relay open
    assert request.values[5] is Value.INACTIVE
    assert asked["path"] == str(tmp_path / "gpiochip3")
    assert asked["consumer"] == hardware.GPIO_CONSUMER
    (offset, settings), *_ = asked["config"].items()
    assert offset == 5
    assert len(asked["config"]) == 1
    assert settings.direction is Direction.OUTPUT
    assert settings.output_value is Value.INACTIVE  # the relay starts open
    assert settings.active_low is active_low  # the kernel inverts, the driver stays logical


def test_a_missing_chip_fails_at_start_up(tmp_path: Path) -> None:
    section = ContactorSection(kind="gpiod", chip=tmp_path / "gpiochip9")
    with contextlib.ExitStack() as stack, pytest.raises(ContactorError, match="gpiochip9 line 17"):
        hardware.open_gpiod_contactor(ControlProcessConfig(contactor=section), stack)


def test_keys_of_the_other_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="gpio_value_path"):
        ContactorSection(kind="gpiod", gpio_value_path=Path("/sys/class/gpio/gpio5/value"))
    with pytest.raises(ValueError, match="line_offset"):
        ContactorSection(kind="gpio_sysfs", line_offset=5)


@pytest.mark.parametrize(("active_low", "closed_value"), [(False, "1"), (True, "0")])
def test_sysfs_close_and_open_write_the_line_and_read_it_back(
    tmp_path: Path, active_low: bool, closed_value: str
) -> None:
    value = tmp_path / "value"
    value.write_text("0\n" if not active_low else "1\n")
    relay = SysfsGpioContactor(value, active_low=active_low)
    try:
        assert not relay.closed
        relay.close()
        assert value.read_text()[0] == closed_value
        assert relay.closed
        relay.open()
        assert not relay.closed
    finally:
        relay.release()


def test_a_missing_sysfs_line_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SysfsGpioContactor(tmp_path / "gpio99" / "value")
