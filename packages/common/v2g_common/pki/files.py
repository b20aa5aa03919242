"""Writing key and certificate files: created with mode 0600, replaced atomically. Standard
library only, so a charger renewing its client certificate needs no CA tooling for it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_private_file"]


def write_private_file(path: Path, data: bytes, *, force: bool) -> None:
    """Create ``path`` with mode 0600 (atomically replaced when ``force``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite")
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
