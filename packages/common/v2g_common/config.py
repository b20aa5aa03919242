"""Loading TOML configuration into pydantic models, with errors an installer can act on.

Every subsystem declares its own section model (``extra="forbid"``, units in key names) in
its own ``config.py``; the deployables compose them (``v2g_gateway.config``,
``vpp_core.config``). :func:`load_config` reads a file and reports the first problems
by dotted key path, e.g. ``etc/gateway.toml: control.ramp_w_per_s: Input should be > 0``.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["ConfigError", "ConfigSection", "exit_on_config_error", "load_config", "parse_config"]

M = TypeVar("M", bound=BaseModel)

#: Exit status of a daemon whose configuration is unusable (sysexits' EX_USAGE is 64; the
#: issue tracker and the systemd unit's RestartPreventExitStatus agree on 2).
CONFIG_EXIT_STATUS = 2


class ConfigSection(BaseModel):
    """Base for every configuration section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` holds ``(dotted_key, reason)``."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {key}: {reason}" for key, reason in problems]
        super().__init__("\n".join(lines))


def _dotted(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def parse_config(model: type[M], data: dict[str, object], *, source: str) -> M:
    """Validate already-parsed data against ``model``; raise :class:`ConfigError` on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            reason = err["msg"]
            if err["type"] == "extra_forbidden":
                reason = "unknown key"
            elif err["type"] == "missing":
                reason = "required key is missing"
            problems.append((_dotted(tuple(err["loc"])), reason))
        raise ConfigError(source, problems) from None


def load_config(model: type[M], path: str | Path) -> M:
    """Read a TOML file and validate it against ``model``."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, [("(file)", exc.strerror or str(exc))]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [("(syntax)", str(exc))]) from None
    return parse_config(model, data, source=source)


def exit_on_config_error(exc: ConfigError) -> NoReturn:
    """Print every problem on stderr and exit with status 2 (what the daemons do)."""
    print(f"configuration error in {exc.source}:", file=sys.stderr)
    for key, reason in exc.problems:
        print(f"  {key}: {reason}", file=sys.stderr)
    raise SystemExit(CONFIG_EXIT_STATUS)
