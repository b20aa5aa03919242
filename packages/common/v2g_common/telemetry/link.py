"""One MQTT v5 connection over TLS with a client certificate (paho-mqtt), seen from asyncio.

paho runs its own network thread; everything it reports is handed to the event loop with
``loop.call_soon_threadsafe`` into one bounded queue of :data:`LinkEvent`. The bound holds
because the broker never has more than ``receive_maximum`` unacknowledged PUBLISHes out to us
(twice that across a reconnect, which redelivers them) and the uplink never has more than its
window in flight; an overflow is a bug, logged loudly
and counted, and an unacknowledged message is redelivered by the broker after a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from v2g_common.pki import client_context

__all__ = [
    "Acked",
    "BrokerEndpoint",
    "LinkDown",
    "LinkEvent",
    "LinkUp",
    "MqttLink",
    "Received",
    "Subscribed",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    """Where and as whom to connect. The certificate's CN is the MQTT user name."""

    host: str
    port: int
    client_id: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    keepalive_s: int = 30
    session_expiry_s: int = 86_400
    receive_maximum: int = 100
    max_inflight: int = 20
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30


@dataclass(frozen=True, slots=True)
class LinkUp:
    session_present: bool


@dataclass(frozen=True, slots=True)
class LinkDown:
    reason: str


@dataclass(frozen=True, slots=True)
class Acked:
    """PUBACK for ``mid``; ``reason_code`` >= 0x80 means the broker refused the message."""

    mid: int
    reason_code: int


@dataclass(frozen=True, slots=True)
class Subscribed:
    """SUBACK; ``granted`` is False when the broker refused the subscription (ACL)."""

    mid: int
    granted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Received:
    mid: int
    topic: str
    payload: bytes
    qos: int
    dup: bool


LinkEvent = LinkUp | LinkDown | Acked | Subscribed | Received


class MqttLink:
    """A paho client whose callbacks become :data:`LinkEvent` items in ``events``.

    ``manual_ack``: received QoS 1 messages are acknowledged only by :meth:`ack` (after the
    receiver has stored them), so a crash before that makes the broker deliver them again.
    """

    def __init__(
        self,
        endpoint: BrokerEndpoint,
        *,
        loop: asyncio.AbstractEventLoop,
        queue_size: int,
        manual_ack: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.events: asyncio.Queue[LinkEvent] = asyncio.Queue(maxsize=queue_size)
        self.overflows = 0
        self._loop = loop
        self._client = self._build_client(manual_ack)

    def _build_client(self, manual_ack: bool) -> mqtt.Client:
        ep = self.endpoint
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=ep.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=True,
        )
        client.tls_set_context(client_context(ep.ca_file, cert=ep.cert_file, key=ep.key_file))
        client.reconnect_delay_set(ep.reconnect_min_s, ep.reconnect_max_s)
        client.max_inflight_messages_set(ep.max_inflight)
        client.max_queued_messages_set(0)  # the outbox is the queue; paho holds only the window
        client.manual_ack_set(manual_ack)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def open(self) -> None:
        """Start connecting in paho's thread (retrying until :meth:`close`)."""
        ep = self.endpoint
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = ep.session_expiry_s
        props.ReceiveMaximum = ep.receive_maximum
        self._client.connect_async(
            ep.host, ep.port, keepalive=ep.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()

    def close(self) -> None:
        """Disconnect and stop paho's thread; unacknowledged messages stay with the caller."""
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> int:
        """Hand one QoS 1 message to paho; its PUBACK arrives as :class:`Acked` with this mid.

        While disconnected paho keeps it and sends it after the next CONNACK (before anything
        published later), so the caller keeps the mid either way.
        """
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise ConnectionError(f"paho refused to queue a publish: {mqtt.error_string(info.rc)}")
        return int(info.mid)

    def subscribe(self, topic_filter: str) -> None:
        self._client.subscribe(topic_filter, qos=1)

    def ack(self, mid: int) -> None:
        self._client.ack(mid, 1)

    # --- paho's thread ----------------------------------------------------------------------

    def _hand_over(self, event: LinkEvent) -> None:
        try:
            self._loop.call_soon_threadsafe(self._put, event)
        except RuntimeError:  # loop closed while paho was still delivering
            pass

    def _put(self, event: LinkEvent) -> None:
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self.overflows += 1
            log.error("MQTT link %s: event queue full, dropped %r", self.endpoint.client_id, event)

    def _on_connect(self, _c: Any, _u: Any, flags: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            self._hand_over(LinkDown(f"connection refused: {reason_code}"))
        else:
            self._hand_over(LinkUp(session_present=bool(flags.session_present)))

    def _on_connect_fail(self, _c: Any, _u: Any) -> None:
        self._hand_over(LinkDown("connection failed"))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        self._hand_over(LinkDown(str(reason_code)))

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason_code: Any, _p: Any) -> None:
        self._hand_over(Acked(mid=mid, reason_code=int(reason_code.value)))

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[Any], _p: Any) -> None:
        refused = [str(code) for code in codes if code.is_failure]
        self._hand_over(Subscribed(mid=mid, granted=not refused, reason=", ".join(refused)))

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._hand_over(
            Received(
                mid=message.mid,
                topic=message.topic,
                payload=bytes(message.payload),
                qos=message.qos,
                dup=bool(message.dup),
            )
        )
