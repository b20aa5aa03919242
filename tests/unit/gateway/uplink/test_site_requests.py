"""The uplink's answers to the core's requests: subscribed at every connect, answered on the
site's file topic, a failing handler contained (rejected answer, logged once, counted)."""

from __future__ import annotations

import json
import logging

import pytest

from v2g_common.telemetry.link import LinkUp, Received, Subscribed
from v2g_gateway.uplink.requests import SiteRequests

REQUEST = "vpp/v1/region/north/site/site-a/activation/request"
FILE = "vpp/v1/region/north/site/site-a/activation/file"


class FakeLink:
    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.published: list[tuple[str, bytes]] = []

    def subscribe(self, topic_filter: str) -> None:
        self.subscribed.append(topic_filter)

    def publish(self, topic: str, payload: bytes) -> int:
        self.published.append((topic, payload))
        return len(self.published)


def received(payload: bytes, topic: str = REQUEST) -> Received:
    return Received(mid=1, topic=topic, payload=payload, qos=1, dup=False)


def requests(link: FakeLink, handler: object) -> SiteRequests:
    return SiteRequests(link, region="north", site="site-a", handler=handler)  # type: ignore[arg-type]


def test_subscribes_at_every_connect_and_answers_on_the_file_topic() -> None:
    link = FakeLink()
    site = requests(link, lambda payload: [b"part-1", b"part-2"])
    site.on_event(LinkUp(session_present=False))
    site.on_event(LinkUp(session_present=True))
    assert link.subscribed == [REQUEST, REQUEST]
    site.on_event(received(b"{}"))
    site.on_event(received(b"{}", topic="vpp/v1/region/north/site/site-a/other"))
    assert link.published == [(FILE, b"part-1"), (FILE, b"part-2")]
    assert site.answered == 1


def test_a_failing_handler_is_answered_rejected_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = FakeLink()

    def broken(payload: bytes) -> list[bytes]:
        raise KeyError("bug")

    site = requests(link, broken)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            site.on_event(received(b'{"request_id": "r9"}'))
        site.on_event(Subscribed(mid=1, granted=False, reason="Not authorized"))
    answers = [json.loads(payload) for _, payload in link.published]
    assert [(a["status"], a["request_id"], a["reason"]) for a in answers] == [
        ("rejected", "r9", "internal error: KeyError")
    ] * 3
    assert site.failures == 3
    assert caplog.text.count("request handler failed") == 1
    assert "request subscription refused: Not authorized" in caplog.text
