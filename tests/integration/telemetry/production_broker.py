"""A real mosquitto running the production configuration from ``etc/mosquitto``.

The file is used as shipped; only machine-specific values are replaced (listener port and
address, certificate paths, ACL path, persistence directory, log destination, run-as user),
and every replaced directive must exist in it, so the tests notice when the file changes.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from tests.support.mosquitto import MosquittoBroker
from v2g_common.pki import PkiLayout

REPO = Path(__file__).resolve().parents[3]
PRODUCTION_CONF = REPO / "etc" / "mosquitto" / "mosquitto.conf"
PRODUCTION_ACL = REPO / "etc" / "mosquitto" / "vpp.acl"


def render_production_conf(
    conf_text: str, *, port: int, pki: PkiLayout, acl_file: Path, state_dir: Path
) -> str:
    """The production config with this machine's paths; raise ``ValueError`` if a directive
    that must be replaced is missing."""
    overrides = {
        "listener": f"{port} 127.0.0.1",
        "cafile": str(pki.ca_cert),
        "certfile": str(pki.server_cert("broker")),
        "keyfile": str(pki.server_key("broker")),
        "acl_file": str(acl_file),
        "persistence_location": f"{state_dir}/",
        "log_dest": "stderr",
    }
    seen: set[str] = set()
    lines = []
    for line in conf_text.splitlines():
        directive = line.split(maxsplit=1)[0] if line.strip() else ""
        if directive in overrides:
            seen.add(directive)
            line = f"{directive} {overrides[directive]}"
        lines.append(line)
    missing = sorted(set(overrides) - seen)
    if missing:
        raise ValueError(f"production mosquitto.conf lacks {missing}")
    lines.append(f"user {pwd.getpwuid(os.getuid()).pw_name}")
    return "\n".join(lines) + "\n"


class ProductionBroker(MosquittoBroker):
    """:class:`MosquittoBroker` (start/stop/restart on a fixed port) with the production
    config; ``persistence`` stays on, so sessions and queues survive :meth:`restart`."""

    def __init__(self, workdir: Path, pki: PkiLayout, *, port: int | None = None) -> None:
        super().__init__(workdir, pki, port=port)
        self.state_dir = workdir / "broker-state"
        self.state_dir.mkdir(exist_ok=True)

    def config_text(self) -> str:
        return render_production_conf(
            PRODUCTION_CONF.read_text(),
            port=self.port,
            pki=self.pki,
            acl_file=PRODUCTION_ACL,
            state_dir=self.state_dir,
        )
