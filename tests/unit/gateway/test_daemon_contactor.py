"""The GPIO contactor driver against a value file (what sysfs exposes for an exported line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from v2g_gateway.contactor import SysfsGpioContactor


@pytest.mark.parametrize(("active_low", "closed_value"), [(False, "1"), (True, "0")])
def test_close_and_open_write_the_line_and_read_it_back(
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


def test_a_missing_line_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SysfsGpioContactor(tmp_path / "gpio99" / "value")
