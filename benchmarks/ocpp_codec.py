"""Per-message cost of receiving OCPP CALLs: our adapter against the bare ``ocpp`` library.

Each measured message goes through decode + schema validation + routing + handler + encode
of the CALLRESULT, over an in-memory connection (no sockets), for a MeterValues CALL and a
TransactionEvent(Updated) CALL carrying the five measurands the station reports.

Paths measured in one run:
* ``adapter_inline``: ``CsmsEndpoint.route_message`` (frame handled in the caller's task);
* ``adapter_run_loop``: ``CsmsEndpoint.run`` reading the frames from an in-memory
  connection (adds the receive loop and the hand-off to the handler task);
* ``library``: ``ocpp.v21.ChargePoint.route_message`` as documented (jsonschema validation
  in the default thread executor);
* ``library_sync_validation``: the same with ``ocpp.messages.ASYNC_VALIDATION = False``.

``stages_cpu_us`` splits one CALL into stages, among them the validation with and without
the 32-bit bounds on every integer (issue 13), compiled alike, and the one used: the
jsonschema-rs pre-check in front of it (``v2g_common.ocpp21.precheck``). Prints one JSON object.
``--profile`` adds the top functions (cProfile, by own time) of the
adapter's inline path and of the library's path.

    .venv/bin/python benchmarks/ocpp_codec.py            # default, ~5-10 s
    .venv/bin/python benchmarks/ocpp_codec.py --messages 50000 --library-messages 5000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import platform
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import fastjsonschema
import ocpp.messages
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from ocpp.routing import on as library_on
from ocpp.v21 import ChargePoint as LibraryChargePoint
from ocpp.v21 import call_result
from websockets.exceptions import ConnectionClosedOK

from v2g_common.ocpp21 import Call, CallResult, CsmsEndpoint, decode_frame, encode_frame, on
from v2g_common.ocpp21.keymap import payload_from_wire
from v2g_common.ocpp21.payloads import codec_for
from v2g_common.ocpp21.schemas import bound_integers, enums_as_formats, inline_refs

TIMESTAMP = "2026-11-21T10:00:00.000Z"


def sampled_values() -> list[dict[str, Any]]:
    def sample(measurand: str, value: float, unit: str) -> dict[str, Any]:
        return {
            "value": value,
            "measurand": measurand,
            "context": "Sample.Periodic",
            "location": "Outlet",
            "unitOfMeasure": {"unit": unit},
        }

    return [
        sample("SoC", 63.0, "Percent"),
        sample("Power.Active.Import", -7000.0, "W"),
        sample("Power.Active.Export", 7000.0, "W"),
        sample("Energy.Active.Import.Register", 12500.0, "Wh"),
        sample("Energy.Active.Export.Register", 3400.0, "Wh"),
    ]


def meter_values_frame(message_id: str) -> str:
    payload = {
        "evseId": 1,
        "meterValue": [{"timestamp": TIMESTAMP, "sampledValue": sampled_values()}],
    }
    return json.dumps([2, message_id, "MeterValues", payload])


def transaction_event_frame(message_id: str) -> str:
    payload = {
        "eventType": "Updated",
        "timestamp": TIMESTAMP,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 7,
        "offline": False,
        "evse": {"id": 1, "connectorId": 1},
        "transactionInfo": {
            "transactionId": "tx-000123",
            "chargingState": "Charging",
            "operationMode": "CentralSetpoint",
        },
        "meterValue": [{"timestamp": TIMESTAMP, "sampledValue": sampled_values()}],
    }
    return json.dumps([2, message_id, "TransactionEvent", payload])


FRAMES: dict[str, Callable[[str], str]] = {
    "MeterValues": meter_values_frame,
    "TransactionEvent": transaction_event_frame,
}


class MemoryConnection:
    """recv() yields prepared frames, then reports closure once all were answered."""

    def __init__(self, frames: list[str] | None = None) -> None:
        self.subprotocol = "ocpp2.1"
        self._frames = iter(frames or [])
        self._expected = len(frames or [])
        self._all_answered = asyncio.Event()
        self.sent = 0
        self.last_sent = ""

    async def recv(self) -> str:
        try:
            return next(self._frames)
        except StopIteration:
            await self._all_answered.wait()
            raise ConnectionClosedOK(None, None) from None

    async def send(self, message: str) -> None:
        self.sent += 1
        self.last_sent = message
        if self.sent >= self._expected:
            self._all_answered.set()


class AdapterCsms(CsmsEndpoint):
    @on("MeterValues")
    async def on_meter_values(self, evse_id: int, meter_value: list[Any], **_: Any) -> Any:
        self.samples = len(meter_value[0]["sampled_value"])
        return call_result.MeterValues()

    @on("TransactionEvent")
    async def on_transaction_event(self, event_type: str, seq_no: int, **_: Any) -> Any:
        self.seq_no = seq_no
        return call_result.TransactionEvent()


class LibraryCsms(LibraryChargePoint):
    @library_on("MeterValues")
    async def on_meter_values(self, evse_id: int, meter_value: list[Any], **_: Any) -> Any:
        self.samples = len(meter_value[0]["sampled_value"])
        return call_result.MeterValues()

    @library_on("TransactionEvent")
    async def on_transaction_event(self, event_type: str, seq_no: int, **_: Any) -> Any:
        self.seq_no = seq_no
        return call_result.TransactionEvent()


def check_answer(connection: MemoryConnection, message_id: str) -> None:
    answer = json.loads(connection.last_sent)
    if answer[:2] != [3, message_id]:
        raise SystemExit(f"unexpected answer {connection.last_sent}")


async def time_route_message(
    route: Callable[[str], Awaitable[Any]], frame: str, count: int, rounds: int
) -> list[float]:
    """CPU seconds per message of each round (process time: all threads, immune to other
    processes' load on a shared machine; best and median are reported)."""
    for _ in range(min(200, count)):  # warm up: validators compiled, caches filled
        await route(frame)
    per_round = max(1, count // rounds)
    timings = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(per_round):
            await route(frame)
        timings.append((time.process_time() - start) / per_round)
    return timings


async def measure_inline(action: str, count: int, rounds: int = 5) -> list[float]:
    connection = MemoryConnection()
    endpoint = AdapterCsms("CS-0001", connection)
    frame = FRAMES[action]("m-1")
    timings = await time_route_message(endpoint.route_message, frame, count, rounds)
    check_answer(connection, "m-1")
    return timings


async def measure_run_loop(action: str, count: int, rounds: int = 5) -> list[float]:
    await measure_inline(action, 200, 1)  # same warm-up as the other paths
    timings = []
    per_round = max(1, count // rounds)
    for _ in range(rounds):
        frames = [FRAMES[action](f"m-{i}") for i in range(per_round)]
        connection = MemoryConnection(frames)
        endpoint = AdapterCsms("CS-0001", connection)
        start = time.process_time()
        await endpoint.run()
        timings.append((time.process_time() - start) / per_round)
        if connection.sent != per_round:
            raise SystemExit(f"run loop answered {connection.sent} of {per_round}")
        check_answer(connection, f"m-{per_round - 1}")
    return timings


async def measure_library(
    action: str, count: int, rounds: int = 5, *, async_validation: bool = True
) -> list[float]:
    ocpp.messages.ASYNC_VALIDATION = async_validation
    try:
        connection = MemoryConnection()
        charge_point = LibraryCsms("CS-0001", connection)
        frame = FRAMES[action]("m-1")
        timings = await time_route_message(charge_point.route_message, frame, count, rounds)
        check_answer(connection, "m-1")
        return timings
    finally:
        ocpp.messages.ASYNC_VALIDATION = True


def figures(timings: list[float], count: int) -> dict[str, float]:
    best, median = min(timings), statistics.median(timings)
    return {
        "messages": count,
        "messages_per_cpu_s_best": round(1 / best),
        "cpu_us_per_message_best": round(best * 1e6, 1),
        "messages_per_cpu_s_median": round(1 / median),
        "cpu_us_per_message_median": round(median * 1e6, 1),
    }


async def measure_all(count: int, library_count: int, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for action in FRAMES:
        sync = await measure_library(action, library_count, rounds, async_validation=False)
        row: dict[str, Any] = {
            "adapter_inline": figures(await measure_inline(action, count, rounds), count),
            "adapter_run_loop": figures(await measure_run_loop(action, count, rounds), count),
            "library": figures(await measure_library(action, library_count, rounds), library_count),
            "library_sync_validation": figures(sync, library_count),
        }
        row["speed_up_inline_vs_library_median"] = round(
            row["library"]["cpu_us_per_message_median"]
            / row["adapter_inline"]["cpu_us_per_message_median"],
            1,
        )
        results[action] = row
    return results


def cpu_us(func: Callable[[], Any], count: int, rounds: int) -> float:
    """Median CPU µs of one ``func()`` call."""
    per_round = max(1, count // rounds)
    timings = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(per_round):
            func()
        timings.append((time.process_time() - start) / per_round)
    return round(statistics.median(timings) * 1e6, 2)


def stages(action: str, count: int, rounds: int) -> dict[str, float]:
    """Where the adapter's time goes for one CALL, stage by stage (median CPU µs)."""
    codec = codec_for("ocpp2.1")
    text = FRAMES[action]("m-1")
    frame = decode_frame(text)
    assert isinstance(frame, Call)
    schema_name = action + "Request"
    schema = codec.catalogue.schemas[schema_name]
    shipped = fastjsonschema.compile(schema, use_default=False)
    prepared = codec.catalogue.validator(schema_name, outgoing=False)
    library = Draft4Validator(schema)  # what ocpp.messages.get_validator builds
    # the 32-bit integer bounds (issue 13) on and off, compiled alike: their cost alone
    checks: dict[str, Any] = {}
    unbounded_schema = enums_as_formats(inline_refs(schema, schema["definitions"]), checks)
    unbounded = fastjsonschema.compile(unbounded_schema, use_default=False, formats=checks)
    bounded = fastjsonschema.compile(
        bound_integers(unbounded_schema), use_default=False, formats=checks
    )
    shape = codec.shape(schema_name)
    result = (
        call_result.MeterValues() if action == "MeterValues" else call_result.TransactionEvent()
    )
    return {
        "decode_frame (orjson)": cpu_us(lambda: decode_frame(text), count, rounds),
        "validate: library jsonschema Draft4Validator": cpu_us(
            lambda: library.validate(frame.payload), count // 20, rounds
        ),
        "validate: fastjsonschema, schema as shipped": cpu_us(
            lambda: shipped(frame.payload), count, rounds
        ),
        "validate: fastjsonschema, refs inlined + enums as formats, no 32-bit bounds": cpu_us(
            lambda: unbounded(frame.payload), count, rounds
        ),
        "validate: the same with the 32-bit integer bounds (the full validator)": cpu_us(
            lambda: bounded(frame.payload), count, rounds
        ),
        "validate: jsonschema-rs pre-check, the full validator if it refuses (used)": cpu_us(
            lambda: prepared(frame.payload), count, rounds
        ),
        "keys camel->snake": cpu_us(lambda: payload_from_wire(frame.payload, shape), count, rounds),
        "encode + validate CALLRESULT": cpu_us(
            lambda: encode_frame(CallResult("m-1", codec.encode_response(action, result))),
            count,
            rounds,
        ),
    }


def profile(coroutine: Awaitable[Any], top: int) -> list[str]:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(coroutine)  # type: ignore[arg-type]
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return lines[start : start + top + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="per adapter path")
    parser.add_argument("--library-messages", type=int, default=600, help="per library path")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per path")
    parser.add_argument("--profile", action="store_true", help="add cProfile top functions")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "ocpp_codec",
        "python": platform.python_version(),
        "ocpp": ocpp.__version__ if hasattr(ocpp, "__version__") else "2.1.0",
        "path": "decode + validate + route + handler + encode CALLRESULT, in-memory connection",
        "clock": "process CPU time (all threads), per message",
        "results": asyncio.run(measure_all(args.messages, args.library_messages, args.rounds)),
        "stages_cpu_us": {
            action: stages(action, args.messages // 4, args.rounds) for action in FRAMES
        },
    }
    if args.profile:
        report["profile_adapter_inline_MeterValues"] = profile(
            measure_inline("MeterValues", args.messages, 1), args.top
        )
        report["profile_library_MeterValues"] = profile(
            measure_library("MeterValues", args.library_messages, 1),
            args.top,
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
