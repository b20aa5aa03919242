"""The per-message series (kept as plain numbers) scrape exactly as prometheus_client's own
Counter and Histogram would show the same observations."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from vpp_core.csms.metrics import _HANDLER_BUCKETS_S, CsmsMetrics

# Handler times on, between and beyond the bucket bounds (a bound counts in its own bucket).
_OBSERVED = [
    ("TransactionEvent", 0.00005),
    ("TransactionEvent", 0.00007),
    ("TransactionEvent", 0.0001),
    ("TransactionEvent", 0.3),
    ("TransactionEvent", 2.0),
    ("Heartbeat", 0.0),
    ("Heartbeat", 0.001),
]


def _reference_exposition() -> list[str]:
    registry = CollectorRegistry()
    frames = Counter("vpp_csms_frames_received", "Websocket messages received", registry=registry)
    messages = Counter(
        "vpp_csms_messages", "Station CALLs handled, by action", ["action"], registry=registry
    )
    handler = Histogram(
        "vpp_csms_handler_seconds",
        "Time in the handler (fleet update) per CALL",
        ["action"],
        buckets=_HANDLER_BUCKETS_S,
        registry=registry,
    )
    for action, seconds in _OBSERVED:
        frames.inc()
        messages.labels(action).inc()
        handler.labels(action).observe(seconds)
    return _without_created(generate_latest(registry))


def _without_created(exposition: bytes) -> list[str]:
    """Sample lines, sorted; ``*_created`` (creation timestamps) left out."""
    lines = exposition.decode().splitlines()
    return sorted(line for line in lines if "_created" not in line and line.startswith("vpp_csms_"))


def test_message_series_scrape_like_prometheus_client() -> None:
    metrics = CsmsMetrics()
    for action, seconds in _OBSERVED:
        metrics.count_frame()
        metrics.observe_message(action, seconds)
    ours = [
        line
        for line in _without_created(generate_latest(metrics.registry))
        if line.startswith(("vpp_csms_frames", "vpp_csms_messages", "vpp_csms_handler"))
    ]
    assert ours == _reference_exposition()
