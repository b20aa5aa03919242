"""Requests from the core to this site over the uplink's MQTT connection (so far: activation
files, :mod:`v2g_common.telemetry.activation_files`). The site subscribes to its own request
topic at every connect (the broker's ACL allows it no other) and publishes each answer's
messages on its file topic at QoS 1. Answers are not kept in the outbox: a requester that
does not hear back asks again. A handler that fails is contained: logged once per kind of
failure, answered as rejected, counted."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from v2g_common.telemetry.activation_files import (
    activation_file_topic,
    activation_request_topic,
    rejection,
    request_id_of,
)
from v2g_common.telemetry.link import LinkEvent, LinkUp, MqttLink, Received, Subscribed

__all__ = ["RequestHandler", "SiteRequests"]

log = logging.getLogger(__name__)

#: A request's payload -> the messages that answer it.
RequestHandler = Callable[[bytes], Sequence[bytes]]


class SiteRequests:
    """Subscribes to the site's request topic and answers what arrives on it."""

    def __init__(self, link: MqttLink, *, region: str, site: str, handler: RequestHandler) -> None:
        self._link = link
        self._site = site
        self._handler = handler
        self.request_topic = activation_request_topic(region, site)
        self.file_topic = activation_file_topic(region, site)
        self.answered = 0
        self.failures = 0
        self._failed_kinds: set[str] = set()

    def on_event(self, event: LinkEvent) -> None:
        if isinstance(event, LinkUp):
            self._link.subscribe(self.request_topic)
        elif isinstance(event, Subscribed) and not event.granted:
            log.error("uplink %s: request subscription refused: %s", self._site, event.reason)
        elif isinstance(event, Received) and event.topic == self.request_topic:
            for message in self._answer(event.payload):
                self._link.publish(self.file_topic, message)
            self.answered += 1

    def _answer(self, payload: bytes) -> Sequence[bytes]:
        try:
            return self._handler(payload)
        except Exception as exc:  # a handler bug must not end the uplink
            self.failures += 1
            kind = type(exc).__name__
            if kind not in self._failed_kinds:
                self._failed_kinds.add(kind)
                log.exception("uplink %s: request handler failed", self._site)
            return [rejection(request_id_of(payload), self._site, f"internal error: {kind}")]
