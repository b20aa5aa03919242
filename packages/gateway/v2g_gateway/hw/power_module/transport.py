"""Holding-register access over an injected pymodbus client, with typed errors and bounded retry.

The client is built by the wiring (``power_module.client.open_serial_client``)
with pymodbus' own retries at 0: this layer retries, so that it can tell a silent bus
(:class:`NoResponseError`) from garbled answers (:class:`FramingError`) using a
:class:`FrameMonitor` that watches the received bytes, and so that every request is bounded
by a hard deadline whatever the client does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from pymodbus.exceptions import ModbusException

from v2g_gateway.hw.errors import (
    FramingError,
    IllegalAddressError,
    LinkDownError,
    ModuleRejectedError,
    NoResponseError,
    ResponseTimeoutError,
)

__all__ = ["MAX_READ_REGISTERS", "FrameMonitor", "ModbusClient", "RegisterLink"]

#: Modbus limit on registers per read request.
MAX_READ_REGISTERS = 125
_ILLEGAL_DATA_ADDRESS = 2
_log = logging.getLogger(__name__)


class ModbusClient(Protocol):
    """The slice of pymodbus' async client this layer uses."""

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> bool: ...

    def close(self) -> None: ...

    def read_holding_registers(
        self, address: int, *, count: int = ..., device_id: int = ...
    ) -> Awaitable[Any]: ...

    def write_registers(
        self, address: int, values: Sequence[int], *, device_id: int = ...
    ) -> Awaitable[Any]: ...


class FrameMonitor:
    """A pymodbus ``trace_packet`` hook counting bytes received since the last request sent."""

    def __init__(self) -> None:
        self.received_since_send = 0

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self.received_since_send = 0
        else:
            self.received_since_send += len(data)
        return data


class RegisterLink:
    """Reads and writes holding registers of one device id; logs once on failure, once on
    recovery. Every call finishes within ``(retries + 1) * (2.5 * timeout_s + 1.05)``."""

    def __init__(
        self,
        client: ModbusClient,
        *,
        device_id: int,
        timeout_s: float,
        retries: int,
        monitor: FrameMonitor | None = None,
        name: str = "power module",
    ) -> None:
        self._client = client
        self.device_id = device_id
        self._timeout_s = timeout_s
        self._retries = retries
        self._monitor = monitor
        self._name = name
        self._failing = False
        self._quiet_until = 0.0
        self.retries_used = 0

    async def read(self, address: int, count: int) -> list[int]:
        """Read ``count`` registers from ``address`` (split into requests of at most 125)."""
        words: list[int] = []
        while count > 0:
            chunk = min(count, MAX_READ_REGISTERS)
            response = await self._request("read", address, chunk, None)
            registers = list(response.registers)
            if len(registers) != chunk:
                raise FramingError(f"{self._name}: asked {chunk} registers, got {len(registers)}")
            words.extend(registers)
            address += chunk
            count -= chunk
        return words

    async def write(self, address: int, values: Sequence[int]) -> None:
        """Write registers starting at ``address`` (function 16)."""
        await self._request("write", address, len(values), list(values))

    async def _request(self, op: str, address: int, count: int, values: list[int] | None) -> Any:
        await self._let_stale_answers_pass()
        last: ResponseTimeoutError | None = None
        for attempt in range(self._retries + 1):
            try:
                response = await self._attempt(op, address, count, values)
            except ResponseTimeoutError as exc:
                last = exc
                self.retries_used += 1 if attempt < self._retries else 0
                continue
            except LinkDownError as exc:
                self._note_failure(exc)
                raise
            self._check_exception(response, op, address, count)
            self._note_recovery()
            return response
        assert last is not None
        self._quiet_until = asyncio.get_running_loop().time() + self._timeout_s
        self._note_failure(last)
        raise last

    async def _let_stale_answers_pass(self) -> None:
        """RTU frames carry no transaction id: an answer arriving after its request timed out
        would be taken for the next request's. After a failed request, stay silent for one
        timeout so such late answers arrive while nothing is pending (pymodbus drops them)."""
        delay = self._quiet_until - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _attempt(self, op: str, address: int, count: int, values: list[int] | None) -> Any:
        await self._ensure_connected()
        try:
            async with asyncio.timeout(self._timeout_s * 1.5 + 0.05):
                if values is None:
                    return await self._client.read_holding_registers(
                        address, count=count, device_id=self.device_id
                    )
                return await self._client.write_registers(address, values, device_id=self.device_id)
        except TimeoutError:
            raise self._timeout_error(op, address) from None
        except (ModbusException, OSError) as exc:  # pymodbus: no response / not connected
            if not self._client.connected:
                raise LinkDownError(f"{self._name}: serial link lost: {exc}") from None
            raise self._timeout_error(op, address) from None

    async def _ensure_connected(self) -> None:
        if self._client.connected:
            return
        try:
            async with asyncio.timeout(self._timeout_s + 1.0):
                ok = await self._client.connect()
        except (TimeoutError, OSError) as exc:
            raise LinkDownError(f"{self._name}: cannot open serial port: {exc}") from None
        if not ok:
            raise LinkDownError(f"{self._name}: cannot open serial port")

    def _timeout_error(self, op: str, address: int) -> ResponseTimeoutError:
        where = f"{self._name} (device id {self.device_id}) {op} @{address}"
        if self._monitor is None:
            return ResponseTimeoutError(f"{where}: no valid answer within {self._timeout_s} s")
        if self._monitor.received_since_send:
            return FramingError(
                f"{where}: {self._monitor.received_since_send} bytes received but no valid frame "
                "(CRC/framing error)"
            )
        return NoResponseError(
            f"{where}: no response within {self._timeout_s} s "
            "(wrong device id, module off or not answering, cable)"
        )

    def _check_exception(self, response: Any, op: str, address: int, count: int) -> None:
        if not response.isError():
            return
        code = int(getattr(response, "exception_code", 0))
        message = f"{self._name}: {op} @{address}+{count} rejected with Modbus exception {code}"
        if code == _ILLEGAL_DATA_ADDRESS:
            raise IllegalAddressError(message, exception_code=code)
        raise ModuleRejectedError(message, exception_code=code)

    def _note_failure(self, exc: Exception) -> None:
        if not self._failing:
            self._failing = True
            _log.warning("%s: communication failing: %s", self._name, exc)

    def _note_recovery(self) -> None:
        if self._failing:
            self._failing = False
            _log.info("%s: communication recovered", self._name)
