"""A systemd service inside a booted container, as its systemd and journald report it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.doubles.waiting import wait_for
from tests.support.nspawn import BootedContainer

__all__ = ["ServiceUnit", "around_each_test", "monotonic_us", "timespan_us"]

U = TypeVar("U", bound="ServiceUnit")
_STATE = ("ActiveState", "SubState", "MainPID", "NRestarts", "Result", "StatusText")


def monotonic_us() -> int:
    """Now on CLOCK_MONOTONIC in µs: the clock of journald's ``__MONOTONIC_TIMESTAMP`` and of
    systemd's ``*TimestampMonotonic`` (the container shares the host's kernel clock)."""
    return time.monotonic_ns() // 1000


def timespan_us(text: str) -> int:
    """systemd's printed time span ("5s", "1min 30s", "500ms", "0") in µs."""
    units = {"": 1, "us": 1, "ms": 1_000, "s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000}
    total = 0
    for part in text.split():
        number = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        total += int(float(number) * units[part[len(number) :]])
    return total


@dataclass
class ServiceUnit:
    container: BootedContainer
    root: Path  # the container's root as the host sees it (the overlay)
    name: str

    def state(self, *extra: str) -> dict[str, str]:
        return self.container.show(self.name, *_STATE, *extra)

    def wait_state(self, active: str, sub: str, *, timeout_s: float) -> dict[str, str]:
        def reached() -> dict[str, str] | None:
            state = self.state()
            return state if (state["ActiveState"], state["SubState"]) == (active, sub) else None

        return wait_for(reached, timeout_s=timeout_s, what=f"{self.name} {active} ({sub})")

    def start_running(self, *, timeout_s: float = 60.0) -> dict[str, str]:
        self.container.systemctl("start", self.name)
        return self.wait_state("active", "running", timeout_s=timeout_s)

    def main_pid(self) -> int:
        return int(self.state()["MainPID"])

    # --- drop-ins (test-only changes, removed by reset) ----------------------------------
    @property
    def _drop_ins(self) -> Path:
        return self.root / "etc/systemd/system" / f"{self.name}.d"

    def drop_in(self, name: str, text: str) -> None:
        path = self._drop_ins / f"{name}.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.container.systemctl("daemon-reload")

    def reset(self) -> None:
        """What each test starts from (benches add their own state)."""
        self.reset_unit()

    def reset_unit(self) -> None:
        """Stopped, failure state cleared, no drop-ins."""
        self.container.systemctl("stop", self.name, check=False)
        self.container.systemctl("reset-failed", self.name, check=False)
        for path in self._drop_ins.glob("*.conf"):
            path.unlink()
        self.container.systemctl("daemon-reload")

    # --- the journal ---------------------------------------------------------------------
    def journal(self, *matches: str, since_us: int = 0) -> list[dict[str, Any]]:
        """This unit's entries (its processes' and systemd's about it) logged after
        ``since_us`` (CLOCK_MONOTONIC, see :func:`monotonic_us`), oldest first."""
        return [
            entry
            for entry in self.container.journal(*matches, unit=self.name)
            if int(entry["__MONOTONIC_TIMESTAMP"]) > since_us
        ]

    def journal_lines(self, *, since_us: int = 0) -> list[str]:
        return [
            f"{e.get('SYSLOG_IDENTIFIER', '?')}[{e.get('_PID', '')}]: {e.get('MESSAGE', '')}"
            for e in self.journal(since_us=since_us)
        ]

    def wait_message(self, text: str, *, since_us: int, timeout_s: float) -> dict[str, Any]:
        """The first entry after ``since_us`` whose message contains ``text``."""

        def found() -> dict[str, Any] | None:
            hits = [e for e in self.journal(since_us=since_us) if text in str(e.get("MESSAGE"))]
            return hits[0] if hits else None

        return wait_for(found, timeout_s=timeout_s, what=f"{text!r} in the journal")


def around_each_test(unit: U) -> Iterator[U]:
    """Reset before and after a test; the unit's journal of the test is printed (pytest
    shows it when the test fails)."""
    unit.reset()
    started_us = monotonic_us()
    yield unit
    print("\n".join(unit.journal_lines(since_us=started_us)))
    unit.reset()
