"""Events from other supervisor services reach the core like the control loop's: the
frequency log's finished activation becomes a FREQUENCY_ACTIVATION event with its summary in
the uplink's outbox (nothing listens at the broker address: the outbox keeps it), and the
daemon's wiring serves that activation's file on request."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import TestPki
from tests.doubles.waiting import eventually
from tests.unit.gateway.uplink.test_drop_report import rows, unreachable_uplink
from v2g_common.telemetry.activation_files import FilePart, join_parts
from v2g_gateway.config import GatewayConfig
from v2g_gateway.control.channel import ControlEvent
from v2g_gateway.control.wire import NO_SNAPSHOT, ControlSnapshot
from v2g_gateway.daemon import _frequency_log
from v2g_gateway.frequency_log import ActivationRecorder, FrequencySample
from v2g_gateway.frequency_log_service import FrequencyLogSection
from v2g_gateway.uplink.service import UplinkService


class QuietChannel:
    def snapshot(self) -> ControlSnapshot:
        return NO_SNAPSHOT

    def subscribe_events(self) -> asyncio.Queue[ControlEvent]:
        return asyncio.Queue()


async def test_a_finished_activation_is_an_event_with_its_summary(
    tmp_path: Path, pki: TestPki
) -> None:
    uplink_config = unreachable_uplink(tmp_path, pki)
    uplink = UplinkService(uplink_config)
    section = FrequencyLogSection(enabled=True, directory=tmp_path, before_s=0.2, after_s=0.2)
    log_service = _frequency_log(GatewayConfig(frequency_log=section), uplink)
    task = asyncio.create_task(uplink.run(QuietChannel()))
    recorder = ActivationRecorder(before_s=0.2, after_s=0.2)
    for k, freq in enumerate([50.0] * 3 + [49.6] * 2 + [50.0] * 5):
        log_service.record(recorder.add(FrequencySample(k / 10, freq, 0.0, (freq - 50) * 1e4)))

    def activation_events() -> list[dict[str, object]]:
        found = [p for _, kind, p in rows(uplink_config.outbox_path) if kind == "event"]
        return [p for p in found if p.get("code") == "FREQUENCY_ACTIVATION"]

    try:
        await eventually(lambda: uplink_config.outbox_path.exists() and bool(activation_events()))
    finally:
        task.cancel()
    (event,) = activation_events()
    assert event["severity"] == "info"
    detail = event["detail"]
    assert isinstance(detail, dict)
    assert detail["min_freq_hz"] == 49.6
    assert str(detail["file"]).startswith("activation-")
    assert (tmp_path / str(detail["file"])).exists()
    # The daemon's wiring: the uplink answers requests for that file.
    handler = uplink.request_handler
    assert handler is not None
    parts = [FilePart.model_validate_json(p) for p in handler(b'{"request_id": "w"}')]
    assert [(p.status, p.file) for p in parts] == [("ok", detail["file"])]
    assert join_parts(parts) == (tmp_path / str(detail["file"])).read_text()
