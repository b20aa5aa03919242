"""Topic helpers: building, parsing, refusing what cannot be a topic level."""

from __future__ import annotations

import pytest

from v2g_common.telemetry import (
    SITE_TELEMETRY_FILTER,
    SiteTopic,
    TopicError,
    dispatch_report_topic,
    event_topic,
    parse_site_topic,
    summary_topic,
)


def test_site_topics_follow_the_architecture() -> None:
    assert summary_topic("north", "site-a") == "vpp/v1/region/north/site/site-a/summary"
    assert event_topic("north", "site-a") == "vpp/v1/region/north/site/site-a/event"
    assert dispatch_report_topic("d-42") == "vpp/v1/dispatch/d-42/report"
    assert SITE_TELEMETRY_FILTER == "vpp/v1/region/+/site/+/+"


@pytest.mark.parametrize("kind", ["summary", "event"])
def test_parse_round_trips(kind: str) -> None:
    topic = f"vpp/v1/region/north/site/site-a/{kind}"
    assert parse_site_topic(topic) == SiteTopic("north", "site-a", kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "topic",
    [
        "vpp/v1/region/north/site/site-a/status",
        "vpp/v2/region/north/site/site-a/summary",
        "vpp/v1/region/north/site/site-a",
        "vpp/v1/region/north/station/site-a/summary",
        "vpp/v1/region//site/site-a/summary",
        "vpp/v1/dispatch/d-1/report",
    ],
)
def test_parse_refuses_other_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_site_topic(topic)


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x" * 65, "tab\there"])
def test_segments_with_wildcards_or_separators_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        summary_topic("north", bad)
    with pytest.raises(TopicError):
        summary_topic(bad, "site-a")
