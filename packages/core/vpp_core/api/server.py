"""Run the API on uvicorn inside the core's event loop, as an ``async with`` component."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI

from vpp_core.supervision import TaskSupervisor

__all__ = ["ApiServer"]


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the core's entry point owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiServer:
    """Serves ``app`` on host:port (port 0 = any free port; see :attr:`port`)."""

    def __init__(
        self, app: FastAPI, *, host: str, port: int, supervisor: TaskSupervisor | None = None
    ) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = _Server(config)
        self._supervisor = supervisor or TaskSupervisor()
        self._tg: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        serve = self._supervisor.keep_running("api-server", self._server.serve)
        task = self._tg.create_task(serve, name="api-server")
        async with asyncio.timeout(10):
            while not self._server.started:
                if task.done():
                    task.result()  # startup failed (e.g. port in use): raise it here
                    raise RuntimeError("API server stopped during startup")
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        assert self._tg is not None
        await self._tg.__aexit__(exc_type, exc, tb)

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])
