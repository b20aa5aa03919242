"""The endpoint against a scripted raw-JSON peer: handlers, errors, calls, SEND, closure."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from ocpp.v21 import call, call_result
from ocpp.v201 import call as call_201
from ocpp.v201 import call_result as call_result_201

from v2g_common.ocpp21 import (
    ChargingStationEndpoint,
    CsmsEndpoint,
    OcppCallError,
    OcppConnectionClosed,
    OcppTimeout,
    PropertyConstraintViolation,
    RequestInvalid,
    ResponseInvalid,
    UnsupportedSubprotocol,
    after,
    on,
)

NOW = "2026-11-21T10:00:00Z"
BOOT = {"reason": "PowerUp", "chargingStation": {"model": "V2G-1", "vendorName": "Acme"}}


class Csms(CsmsEndpoint):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.after_boot = asyncio.Event()

    @on("BootNotification")
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **kw: Any) -> Any:
        self.received.append(("BootNotification", {"charging_station": charging_station}))
        return call_result.BootNotification(current_time=NOW, interval=300, status="Accepted")

    @after("BootNotification")
    async def boot_done(self, **kw: Any) -> None:
        self.after_boot.set()

    @on("Heartbeat")
    def on_heartbeat(self) -> Any:  # a sync handler without **kwargs is fine too
        return call_result.Heartbeat(current_time=NOW)

    @on("StatusNotification")
    async def on_status(self, evse_id: int, **kw: Any) -> Any:
        if evse_id == 99:
            raise PropertyConstraintViolation("no EVSE 99", {"evseId": 99})
        if evse_id == 13:
            raise RuntimeError("handler bug")
        return call_result.StatusNotification()

    @on("NotifyPeriodicEventStream")
    async def on_stream(self, id: int, data: list[Any], call_unique_id: str, **kw: Any) -> None:
        self.received.append(("NotifyPeriodicEventStream", {"id": id, "mid": call_unique_id}))


def status(evse_id: int) -> dict[str, Any]:
    return {"timestamp": NOW, "connectorStatus": "Available", "evseId": evse_id, "connectorId": 1}


async def test_call_answered_with_snake_kwargs_and_after_hook(
    connection: Any, run_endpoint: Any
) -> None:
    csms = Csms("CS-1", connection)
    async with run_endpoint(csms):
        connection.feed([2, "b-1", "BootNotification", BOOT])
        answer = await connection.next_sent()
        assert answer == [3, "b-1", {"currentTime": NOW, "interval": 300, "status": "Accepted"}]
        async with asyncio.timeout(2):
            await csms.after_boot.wait()
    assert csms.received == [
        ("BootNotification", {"charging_station": {"model": "V2G-1", "vendor_name": "Acme"}})
    ]


async def test_handler_errors_become_call_errors_and_connection_lives(
    connection: Any, run_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    csms = Csms("CS-1", connection)
    async with run_endpoint(csms) as task:
        connection.feed([2, "s-1", "StatusNotification", status(99)])
        assert await connection.next_sent() == [
            4, "s-1", "PropertyConstraintViolation", "no EVSE 99", {"evseId": 99}
        ]  # fmt: skip
        with caplog.at_level(logging.DEBUG, logger="v2g_common.ocpp21"):
            for n in range(3):
                connection.feed([2, f"s-bug-{n}", "StatusNotification", status(13)])
                answer = await connection.next_sent()
                assert answer[:3] == [4, f"s-bug-{n}", "InternalError"]
        tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
        assert len(tracebacks) == 1, "a failing handler is logged with traceback once"
        connection.feed([2, "h-1", "Heartbeat", {}])
        assert await connection.next_sent() == [3, "h-1", {"currentTime": NOW}]
        assert not task.done()


async def test_schema_invalid_call_gets_the_constraint_code_with_its_id(
    connection: Any, run_endpoint: Any
) -> None:
    csms = Csms("CS-1", connection)
    async with run_endpoint(csms):
        connection.feed([2, "v-1", "BootNotification", {"reason": "PowerUp"}])
        connection.feed([2, "v-2", "BootNotification", {**BOOT, "reason": "Bored"}])
        connection.feed([2, "v-3", "BootNotification", {**BOOT, "surplus": 1}])
        codes = [(await connection.next_sent())[:3] for _ in range(3)]
    assert codes == [
        [4, "v-1", "OccurrenceConstraintViolation"],
        [4, "v-2", "PropertyConstraintViolation"],
        [4, "v-3", "FormatViolation"],
    ]
    assert csms.received == []


async def test_send_reaches_its_handler_and_is_never_answered(
    connection: Any, run_endpoint: Any
) -> None:
    csms = Csms("CS-1", connection)
    async with run_endpoint(csms):
        connection.feed(
            [
                6,
                "p-1",
                "NotifyPeriodicEventStream",
                {"id": 3, "pending": 0, "basetime": NOW, "data": [{"t": 0, "v": "1"}]},
            ]
        )
        connection.feed([6, "p-2", "NotifyPeriodicEventStream", {"id": "bad"}])  # dropped
        connection.feed([6, "p-3", "NoSuchStream", {}])  # no handler: dropped, not answered
        connection.feed([2, "h-1", "Heartbeat", {}])
        # handled in order: the next frame out is the Heartbeat's answer
        assert (await connection.next_sent())[:2] == [3, "h-1"]
    assert csms.received == [("NotifyPeriodicEventStream", {"id": 3, "mid": "p-1"})]
    assert connection.unread() == []


async def test_call_returns_the_call_result_dataclass(connection: Any, run_endpoint: Any) -> None:
    csms = Csms("CS-1", connection)
    async with run_endpoint(csms):
        pending = asyncio.create_task(csms.call(call.GetCompositeSchedule(duration=600, evse_id=1)))
        request = await connection.next_sent()
        assert request[0] == 2
        assert request[2:] == [
            "GetCompositeSchedule",
            {"duration": 600, "evseId": 1},
        ]
        connection.feed([3, "someone-else", {"status": "Accepted"}])  # unknown id: ignored
        connection.feed(
            [3, request[1], {"status": "Rejected", "statusInfo": {"reasonCode": "NoTx"}}]
        )
        result = await pending
    assert result == call_result.GetCompositeSchedule(
        status="Rejected", status_info={"reason_code": "NoTx"}
    )


@pytest.mark.parametrize("type_id", [4, 5])
async def test_call_error_and_call_result_error_raise_ocpp_call_error(
    connection: Any, run_endpoint: Any, type_id: int
) -> None:
    csms = Csms("CS-1", connection)
    async with run_endpoint(csms):
        pending = asyncio.create_task(csms.call(call.Heartbeat()))
        request = await connection.next_sent()
        connection.feed([type_id, request[1], "SecurityError", "not you", {"why": "cert"}])
        with pytest.raises(OcppCallError) as caught:
            await pending
    assert (caught.value.code, caught.value.description, caught.value.details) == (
        "SecurityError", "not you", {"why": "cert"}
    )  # fmt: skip
    assert caught.value.message_type_id == type_id
    assert caught.value.action == "Heartbeat"


async def test_timeout_then_late_answer_is_ignored(
    connection: Any, run_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    csms = Csms("CS-1", connection, response_timeout_s=0.05)
    async with run_endpoint(csms) as task:
        with pytest.raises(OcppTimeout) as caught:
            await csms.call(call.Heartbeat())
        assert caught.value.sent
        assert isinstance(caught.value, TimeoutError)
        late = await connection.next_sent()
        connection.feed([3, late[1], {"currentTime": NOW}])  # arrives after the timeout
        connection.feed([2, "h-2", "Heartbeat", {}])
        assert (await connection.next_sent())[:2] == [3, "h-2"]
        assert any(late[1] in r.getMessage() for r in caplog.records), "the stray is logged"
        # the next call is not confused by the late answer
        pending = asyncio.create_task(csms.call(call.Heartbeat(), timeout_s=2))
        request = await connection.next_sent()
        connection.feed([3, request[1], {"currentTime": "2026-11-21T10:00:01Z"}])
        assert (await pending).current_time == "2026-11-21T10:00:01Z"
        assert not task.done()


async def test_invalid_request_is_refused_and_nothing_sent(connection: Any) -> None:
    csms = Csms("CS-1", connection)
    with pytest.raises(RequestInvalid) as caught:
        await csms.call(call.GetCompositeSchedule(duration=600, evse_id=-3))
    assert caught.value.code == "PropertyConstraintViolation"
    with pytest.raises(RequestInvalid):
        await csms.call(call.SetChargingProfile(evse_id=1, charging_profile={"id": 1}))
    assert connection.sent == []


async def test_invalid_result_raises_and_tells_a_21_peer(
    connection: Any, run_endpoint: Any
) -> None:
    csms = Csms("CS-1", connection)
    async with run_endpoint(csms):
        pending = asyncio.create_task(csms.call(call.Heartbeat()))
        request = await connection.next_sent()
        connection.feed([3, request[1], {"currentTime": 12}])
        with pytest.raises(ResponseInvalid) as caught:
            await pending
        assert caught.value.code == "TypeConstraintViolation"
        reply = await connection.next_sent()
    assert reply[:3] == [5, request[1], "TypeConstraintViolation"]


async def test_handler_may_call_the_peer_without_deadlock(
    connection: Any, run_endpoint: Any
) -> None:
    class AskingStation(ChargingStationEndpoint):
        @on("TriggerMessage")
        async def on_trigger(self, requested_message: str, **kw: Any) -> Any:
            info = {"model": "m", "vendor_name": "v"}
            boot = call.BootNotification(reason="Triggered", charging_station=info)
            self.boot = await self.call(boot)
            return call_result.TriggerMessage(status="Accepted")

    station = AskingStation("CS-1", connection)
    async with run_endpoint(station):
        connection.feed([2, "t-1", "TriggerMessage", {"requestedMessage": "BootNotification"}])
        boot = await connection.next_sent()
        assert boot[2] == "BootNotification"
        connection.feed([3, boot[1], {"currentTime": NOW, "interval": 60, "status": "Pending"}])
        assert await connection.next_sent() == [3, "t-1", {"status": "Accepted"}]
    assert station.boot.status == "Pending"


async def test_closing_fails_the_waiting_call(connection: Any) -> None:
    csms = Csms("CS-1", connection)
    task = asyncio.create_task(csms.run())
    pending = asyncio.create_task(csms.call(call.Heartbeat()))
    await connection.next_sent()
    connection.close()
    with pytest.raises(OcppConnectionClosed):
        await pending
    async with asyncio.timeout(2):
        await task
    with pytest.raises(OcppConnectionClosed):
        await csms.call(call.Heartbeat())


async def test_v201_connection_uses_v201_schemas_and_classes(
    make_connection: Any, run_endpoint: Any
) -> None:
    connection = make_connection("ocpp2.0.1")
    csms = Csms("CS-1", connection)
    assert csms.subprotocol == "ocpp2.0.1"
    async with run_endpoint(csms):
        connection.feed([2, "b-1", "BootNotification", BOOT])
        assert (await connection.next_sent())[:2] == [3, "b-1"]
        connection.feed([2, "x-1", "NotifyDERAlarm", {}])  # a 2.1-only action
        assert (await connection.next_sent())[:3] == [4, "x-1", "NotImplemented"]
        pending = asyncio.create_task(csms.call(call_201.Heartbeat()))
        request = await connection.next_sent()
        connection.feed([3, request[1], {"currentTime": NOW}])
        assert await pending == call_result_201.Heartbeat(current_time=NOW)
    with pytest.raises(UnsupportedSubprotocol):
        await csms.send("NotifyPeriodicEventStream", {"id": 1})


async def test_send_goes_out_unanswered(connection: Any) -> None:
    station = ChargingStationEndpoint("CS-1", connection)
    message_id = await station.send(
        "NotifyPeriodicEventStream",
        {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0.0, "v": "230"}]},
    )
    assert await connection.next_sent() == [
        6, message_id, "NotifyPeriodicEventStream",
        {"id": 1, "pending": 0, "basetime": NOW, "data": [{"t": 0.0, "v": "230"}]},
    ]  # fmt: skip


def test_unknown_subprotocol_is_refused(make_connection: Any) -> None:
    with pytest.raises(UnsupportedSubprotocol):
        Csms("CS-1", make_connection("ocpp1.6"))


async def test_flooding_peer_is_back_pressured_not_buffered(connection: Any) -> None:
    class Slow(CsmsEndpoint):
        incoming_queue_size = 4
        release = asyncio.Event()

        @on("Heartbeat")
        async def on_heartbeat(self, **kw: Any) -> Any:
            await self.release.wait()
            return call_result.Heartbeat(current_time=NOW)

    slow = Slow("CS-1", connection)
    for n in range(50):
        connection.feed([2, f"f-{n}", "Heartbeat", {}])
    task = asyncio.create_task(slow.run())
    for _ in range(20):
        await asyncio.sleep(0)  # let the receive loop fill the queue (no timing involved)
    assert connection._inbound.qsize() >= 50 - 4 - 2, "the socket is no longer read"
    Slow.release.set()
    answers = [await connection.next_sent() for _ in range(50)]
    assert [a[1] for a in answers] == [f"f-{n}" for n in range(50)]
    connection.close()
    await task


@pytest.mark.parametrize("type_id", [5, 6])
async def test_a_201_peer_gets_message_type_not_supported_for_21_types(
    make_connection: Any, run_endpoint: Any, type_id: int
) -> None:
    connection = make_connection("ocpp2.0.1")
    csms = Csms("CS-1", connection)
    async with run_endpoint(csms):
        frame = [type_id, "n-1", "NotifyPeriodicEventStream", {"id": 1}]
        if type_id == 5:
            frame = [5, "n-1", "FormatViolation", "x", {}]
        connection.feed(frame)
        assert (await connection.next_sent())[:3] == [4, "n-1", "MessageTypeNotSupported"]
    assert csms.received == []


def test_warm_up_compiles_the_validators_of_the_role() -> None:
    from v2g_common.ocpp21.payloads import codec_for

    catalogue = codec_for("ocpp2.0.1").catalogue
    Csms.warm_up("ocpp2.0.1", calls=["GetCompositeSchedule"])
    compiled = set(catalogue._validators)
    assert ("BootNotificationRequest", False) in compiled  # their request in
    assert ("BootNotificationResponse", True) in compiled  # our answer out
    assert ("GetCompositeScheduleRequest", True) in compiled  # our request out
    assert ("GetCompositeScheduleResponse", False) in compiled  # their answer in


async def test_handler_result_forms(connection: Any, run_endpoint: Any) -> None:
    class Loose(CsmsEndpoint):
        @on("Heartbeat")
        async def on_heartbeat(self, **kw: Any) -> Any:
            return {"current_time": NOW}  # a snake dict is accepted too

        @on("StatusNotification")
        async def on_status(self, **kw: Any) -> Any:
            return None  # a bug: no result

    async with run_endpoint(Loose("CS-1", connection)):
        connection.feed([2, "h-1", "Heartbeat", {}])
        assert await connection.next_sent() == [3, "h-1", {"currentTime": NOW}]
        connection.feed([2, "s-1", "StatusNotification", status(1)])
        assert (await connection.next_sent())[:3] == [4, "s-1", "InternalError"]


class FastPath(CsmsEndpoint):
    """Plain-function handlers (the receive loop's fast path) next to an async one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()
        self.heartbeat_tasks: list[str] = []
        self.hook_answer: Any = None

    @on("BootNotification")
    async def on_boot(self, **kw: Any) -> Any:
        await self.release.wait()
        return call_result.BootNotification(current_time=NOW, interval=300, status="Accepted")

    @on("Heartbeat")
    def on_heartbeat(self) -> Any:
        task = asyncio.current_task()
        self.heartbeat_tasks.append(task.get_name() if task else "")
        return call_result.Heartbeat(current_time=NOW)

    @on("StatusNotification")
    def on_status(self, **kw: Any) -> Any:  # plain, but hands back a coroutine that calls
        return self._status_after_asking()

    async def _status_after_asking(self) -> Any:
        await self.call(call.Heartbeat())
        return call_result.StatusNotification()

    @on("NotifyEVChargingNeeds")
    def on_needs(self, **kw: Any) -> Any:
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @after("NotifyEVChargingNeeds")
    def needs_recorded(self, **kw: Any) -> Any:  # plain hook returning a calling coroutine
        return self._ask_after_needs()

    async def _ask_after_needs(self) -> None:
        self.hook_answer = await self.call(call.Heartbeat())


NEEDS = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC"}}


async def test_plain_handler_runs_in_the_receive_loop_when_idle(
    connection: Any, run_endpoint: Any
) -> None:
    csms = FastPath("CS-1", connection)
    async with run_endpoint(csms):
        connection.feed([2, "h-1", "Heartbeat", {}])
        assert await connection.next_sent() == [3, "h-1", {"currentTime": NOW}]
    assert csms.heartbeat_tasks == ["endpoint-under-test"], "no hand-off to the handler task"


async def test_plain_handler_waits_its_turn_behind_a_busy_handler(
    connection: Any, run_endpoint: Any
) -> None:
    csms = FastPath("CS-1", connection)
    async with run_endpoint(csms):
        connection.feed([2, "b-1", "BootNotification", BOOT])
        connection.feed([2, "h-1", "Heartbeat", {}])
        for _ in range(20):
            await asyncio.sleep(0)  # both frames read (no timing involved)
        assert connection.unread() == [], "the heartbeat must not overtake the boot"
        csms.release.set()
        assert (await connection.next_sent())[:2] == [3, "b-1"]
        assert await connection.next_sent() == [3, "h-1", {"currentTime": NOW}]
    assert csms.heartbeat_tasks == ["ocpp-handlers[CS-1]"]


async def test_plain_handler_returning_a_coroutine_may_call_the_peer(
    connection: Any, run_endpoint: Any
) -> None:
    async with run_endpoint(FastPath("CS-1", connection)):
        connection.feed([2, "s-1", "StatusNotification", status(1)])
        asked = await connection.next_sent()
        assert asked[2] == "Heartbeat"
        connection.feed([3, asked[1], {"currentTime": NOW}])
        assert await connection.next_sent() == [3, "s-1", {}]


async def test_plain_after_hook_returning_a_coroutine_may_call_the_peer(
    connection: Any, run_endpoint: Any
) -> None:
    csms = FastPath("CS-1", connection)
    async with run_endpoint(csms):
        connection.feed([2, "n-1", "NotifyEVChargingNeeds", NEEDS])
        assert await connection.next_sent() == [3, "n-1", {"status": "Accepted"}]
        asked = await connection.next_sent()
        assert asked[2] == "Heartbeat"
        connection.feed([3, asked[1], {"currentTime": NOW}])
        connection.feed([2, "h-1", "Heartbeat", {}])  # served after the hook finished
        assert await connection.next_sent() == [3, "h-1", {"currentTime": NOW}]
    assert csms.hook_answer == call_result.Heartbeat(current_time=NOW)
