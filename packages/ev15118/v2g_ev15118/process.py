"""A child process kept running: started, its output logged line by line under a prefix (so
``journalctl -u v2g-gateway`` shows the SECC's state machine), restarted with back-off when it
exits. Its failures are contained here: logged once per exit with the status, counted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

__all__ = ["SupervisedProcess"]

log = logging.getLogger("v2g_ev15118.process")

#: A run at least this long resets the back-off (it was not a crash loop).
_STABLE_S = 60.0


class SupervisedProcess:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        prefix: str,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._argv, self._prefix = list(argv), prefix
        self._backoff_s, self._backoff_max_s = backoff_s, backoff_max_s
        self.exits = 0
        self.pid: int | None = None

    async def run(self) -> None:
        """Until cancelled (the child is killed then)."""
        loop = asyncio.get_running_loop()
        delay_s = self._backoff_s
        while True:
            started = loop.time()
            try:
                status = await self._run_once()
            except OSError as exc:  # cannot even start it (interpreter missing...)
                status = f"could not start: {exc}"
            self.exits += 1
            if loop.time() - started >= _STABLE_S:
                delay_s = self._backoff_s
            log.error("%s exited (%s); restart in %.0f s", self._prefix, status, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self._backoff_max_s)

    async def _run_once(self) -> str:
        child = await asyncio.create_subprocess_exec(
            *self._argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        self.pid = child.pid
        log.info("%s started (pid %d)", self._prefix, child.pid)
        try:
            assert child.stdout is not None
            while line := await child.stdout.readline():
                log.info("%s: %s", self._prefix, line.decode(errors="replace").rstrip())
            return f"status {await child.wait()}"
        finally:
            if child.returncode is None:
                child.kill()
                await asyncio.shield(child.wait())
            self.pid = None
