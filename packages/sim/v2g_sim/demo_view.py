"""The demo's live progress: a rich panel on a terminal, one plain line per period otherwise
(CI logs, pipes). Pure presentation: :class:`DemoFrame` holds what to show."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TextIO

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = ["DemoFrame", "DemoView"]

_BARS = " ▁▂▃▄▅▆▇█"
_HISTORY = 60
_PLAIN_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class DemoFrame:
    """One refresh. ``target_kw``/``dispatch_kw``: the dispatch's discharge as the grid operator
    states it (magnitude); ``fleet_net_kw``: every charger, signed as the README says
    (positive = into the EVs, negative = out of them)."""

    phase: str
    elapsed_s: float
    window_s: float
    window_elapsed_s: float | None
    target_kw: float
    dispatch_kw: float
    fleet_net_kw: float
    delivered_kwh: float
    target_kwh_so_far: float
    sessions: int
    stations: int
    discharging: int
    dropouts: int
    fail_safe: int
    status: str
    notes: tuple[str, ...] = field(default=())


class DemoView:
    """``with DemoView(stream) as view: view.show(frame)``; rich when ``stream`` is a TTY."""

    def __init__(self, stream: TextIO | None = None, *, rich: bool | None = None) -> None:
        self._stream = stream or sys.stdout
        self._rich = self._stream.isatty() if rich is None else rich
        self._console = Console(file=self._stream, force_terminal=self._rich or None)
        self._live: Live | None = None
        self._target: deque[float] = deque(maxlen=_HISTORY)
        self._delivered: deque[float] = deque(maxlen=_HISTORY)
        self._last_plain = 0.0

    def __enter__(self) -> DemoView:
        if self._rich:
            self._live = Live(console=self._console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def say(self, message: str) -> None:
        """A line that stays (phase changes, results)."""
        self._console.print(message, highlight=False, markup=False)

    def table(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        """Two columns, what and value (the closing summary)."""
        table = Table(
            title=title, title_justify="left", box=box.SIMPLE if self._rich else box.ASCII
        )
        table.add_column("figure")
        table.add_column("value", justify="right")
        for what, value in rows:
            table.add_row(what, value)
        self._console.print(table, highlight=False)

    def show(self, frame: DemoFrame) -> None:
        self._target.append(frame.target_kw)
        self._delivered.append(frame.dispatch_kw)
        if self._live is not None:
            self._live.update(self._render(frame))
            return
        now = time.monotonic()
        if now - self._last_plain >= _PLAIN_EVERY_S:
            self._last_plain = now
            self.say(plain_line(frame))

    def _render(self, f: DemoFrame) -> Panel:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("phase", f"{f.phase}  ({f.status})")
        table.add_row("power", f"{f.dispatch_kw:8.1f} kW delivered   target {f.target_kw:8.1f} kW")
        table.add_row("fleet net", f"{f.fleet_net_kw:8.1f} kW (all chargers, - = out of the EVs)")
        table.add_row(
            "energy", f"{f.delivered_kwh:8.3f} kWh of {f.target_kwh_so_far:8.3f} kWh so far"
        )
        table.add_row(
            "sessions",
            f"{f.sessions}/{f.stations} plugged in, {f.discharging} discharging, "
            f"{f.dropouts} dropped out, {f.fail_safe} in fail-safe",
        )
        spark = Text()
        spark.append("target    " + _sparkline(self._target, self._scale()) + "\n", "cyan")
        spark.append("delivered " + _sparkline(self._delivered, self._scale()), "green")
        notes = Text("\n".join(f.notes[-5:]), style="dim")
        title = f"vpp-demo  t={f.elapsed_s:5.0f} s"
        if f.window_elapsed_s is not None:
            title += f"  window {f.window_elapsed_s:4.0f}/{f.window_s:.0f} s"
        return Panel(Group(table, spark, notes), title=title)

    def _scale(self) -> float:
        return max([1.0, *self._target, *self._delivered])


def _sparkline(values: deque[float], top: float) -> str:
    cells = []
    for v in values:
        level = max(0.0, min(1.0, v / top))
        cells.append(_BARS[round(level * (len(_BARS) - 1))])
    return "".join(cells)


def plain_line(f: DemoFrame) -> str:
    window = ""
    if f.window_elapsed_s is not None:
        window = f" window {f.window_elapsed_s:.0f}/{f.window_s:.0f}s"
    return (
        f"[{f.elapsed_s:6.1f}s] {f.phase}{window}: delivered {f.dispatch_kw:.1f} kW "
        f"(target {f.target_kw:.1f} kW), energy {f.delivered_kwh:.3f}/{f.target_kwh_so_far:.3f} "
        f"kWh, sessions {f.sessions}/{f.stations}, discharging {f.discharging}, "
        f"dropped {f.dropouts}, fail-safe {f.fail_safe}, fleet net {f.fleet_net_kw:.1f} kW"
    )
