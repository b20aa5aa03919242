"""The control process: started by the daemon with one end of a SOCK_SEQPACKET pair, it opens
the hardware, applies the real-time settings and runs :class:`ControlLoop` until told to stop.

Parent side: :class:`ControlProcess` (spawn, wait, kill). Child side: :func:`main`, run as
``python -m v2g_gateway.control_host --fd N`` with its configuration as JSON on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time

from v2g_gateway.adapters import AdapterError
from v2g_gateway.control.events import EventCode
from v2g_gateway.control.loop import ControlLoop
from v2g_gateway.control.ports import PowerStage, StageRatings
from v2g_gateway.control.realtime import apply_realtime
from v2g_gateway.devices import ControlProcessConfig
from v2g_gateway.hw.errors import HardwareError
from v2g_gateway.logs import setup_logging

__all__ = ["ControlProcess", "main"]

log = logging.getLogger("v2g_gateway.control")

#: Exit status when the hardware cannot be brought up (systemd restarts the unit).
HARDWARE_EXIT_STATUS = 3


class ControlProcess:
    """The daemon's child running the control loop; ``sock`` is the supervisor's end."""

    def __init__(self, process: asyncio.subprocess.Process, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock

    @classmethod
    async def start(cls, cfg: ControlProcessConfig) -> ControlProcess:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "v2g_gateway.control_host",
                "--fd",
                str(child.fileno()),
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(child.fileno(),),
            )
        finally:
            child.close()
        assert process.stdin is not None
        process.stdin.write(cfg.model_dump_json().encode())
        await process.stdin.drain()
        process.stdin.close()
        return cls(process, parent)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait(self) -> int:
        return await self.process.wait()

    async def stop(self, *, timeout_s: float) -> int:
        """Wait for the loop to finish its stop sequence; kill it after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self.process.wait()
        except TimeoutError:
            log.error("control process did not stop within %.0f s: killing it", timeout_s)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            return await self.process.wait()


async def _read_ratings(stage: PowerStage, *, timeout_s: float) -> StageRatings:
    """Retry until the module answers (it may still be booting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await stage.read_ratings()
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("power module not answering yet: %s", exc)
            await asyncio.sleep(1.0)


async def run(cfg: ControlProcessConfig, sock: socket.socket) -> int:
    # imported here: the supervisor imports this module for ControlProcess and never needs
    # pymodbus, smbus2 or a device adapter (tests/unit/test_deployable_boundaries.py)
    from v2g_gateway.hardware import open_hardware

    async with open_hardware(cfg) as hw:
        ratings = await _read_ratings(hw.stage, timeout_s=cfg.startup_timeout_s)
        log.info(
            "power module rated %.0f W charge / %.0f W discharge; loop at %.0f Hz",
            ratings.max_charge_w,
            ratings.max_discharge_w,
            1.0 / cfg.control.period_s,
        )
        for problem in apply_realtime(
            priority=cfg.control.realtime_priority,
            lock_memory=cfg.control.realtime_mlockall,
        ):
            log.warning("%s", problem)
        loop = ControlLoop(
            stage=hw.stage,
            sensor=hw.sensor,
            contactor=hw.contactor,
            sock=sock,
            settings=cfg.control,
        )
        status = await loop.run()
        if loop.orphaned:
            log.warning(
                "supervisor gone: lease finished, ramped to 0 W, contactor open; exiting",
                extra={"event_code": EventCode.SUPERVISOR_LOST},
            )
        else:
            log.info("control loop stopped at 0 W with the contactor open")
        return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="v2g-gateway-control", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="inherited SEQPACKET socket")
    args = parser.parse_args(argv)
    # The supervisor decides when to stop (ramp first); a terminal's Ctrl-C or systemd's
    # SIGTERM to the whole cgroup must not cut the loop short.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    cfg = ControlProcessConfig.model_validate_json(sys.stdin.buffer.read())
    setup_logging(cfg.log_level, identifier="v2g-gateway-control")
    sock = socket.socket(fileno=args.fd)
    try:
        return asyncio.run(run(cfg, sock))
    except (HardwareError, AdapterError, OSError) as exc:
        log.error("hardware not available: %s", exc)  # an installer's problem, no traceback
        return HARDWARE_EXIT_STATUS
    except Exception:
        log.exception("control process failed to start or crashed")
        return HARDWARE_EXIT_STATUS


if __name__ == "__main__":
    raise SystemExit(main())
