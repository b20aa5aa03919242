"""Run inside the gateway's sandbox (an ``ExecStartPost=`` of the unit: same user, groups,
mount namespace, seccomp filter and device cgroup as the daemon): try to write where the
daemon might write and to open device nodes, and print one JSON line with what happened.

Usage: ``python3 hardening_probe.py WRITE_DIR... -- DEVICE...``. Each outcome is "ok" or the
errno name (EROFS, EACCES, EPERM, ...).
"""

from __future__ import annotations

import errno
import json
import os
import sys

MARKER = "HARDENING-PROBE "


def _outcome(action: str, path: str) -> str:
    try:
        if action == "write":
            name = os.path.join(path, f".probe-{os.getpid()}")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.unlink(name)
        else:
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            os.close(fd)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def main(argv: list[str]) -> int:
    split = argv.index("--")
    report = {
        "uid": os.getuid(),
        "write": {path: _outcome("write", path) for path in argv[:split]},
        "open": {path: _outcome("open", path) for path in argv[split + 1 :]},
    }
    print(MARKER + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
