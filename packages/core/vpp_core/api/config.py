"""The ``[api]`` section of ``etc/core.toml``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from v2g_common.config import ConfigSection

__all__ = ["ApiConfig"]


class ApiConfig(ConfigSection):
    """Where the grid-operator API listens and where its bearer token is kept.

    The token lives in its own file (mode 0600, one line) so the config can be shared.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    bearer_token_file: Path = Path("/etc/vpp-core/api-token")

    def read_token(self) -> str:
        """The token (whitespace stripped); raises OSError/ValueError with the path."""
        token = self.bearer_token_file.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise ValueError(f"{self.bearer_token_file}: bearer token must be >= 16 characters")
        return token
