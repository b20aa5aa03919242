"""The ``provision-pki`` console script: issuing certificates needs ``cryptography``, which
only ``v2g-common[pki]`` installs (the technician's machine, the demo; never a charger, which
keeps no CA key). Without it the command says so instead of failing with a traceback."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    try:
        from v2g_common.pki.cli import main as provision_pki
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "cryptography":
            raise
        print(
            "provision-pki: needs the 'pki' extra (pip install 'v2g-common[pki]'); issue "
            "certificates on the technician's machine, not on a charger",
            file=sys.stderr,
        )
        return 1
    return provision_pki(argv)
