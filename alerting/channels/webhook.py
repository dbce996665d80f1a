"""A generic JSON webhook, signed so the receiver can tell it came from us.

The body is the message as JSON (UTF-8). Headers: ``X-Yuqing-Timestamp`` (Unix seconds) and
``X-Yuqing-Signature: sha256=<hex>`` where hex is HMAC-SHA256 with the channel's ``secret`` over
``<timestamp>.<body>``: binding the timestamp lets a receiver refuse replays of old messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import httpx

from alerting.channels.base import DeliveryError, Message, Notifier, register

SIGNATURE_HEADER = "X-Yuqing-Signature"
TIMESTAMP_HEADER = "X-Yuqing-Timestamp"


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _shared_client() -> httpx.Client:
    # One pooled client: building an SSL context per message costs more than sending it.
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=False)
        return _client


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """True when ``signature`` is ours for ``body`` at ``timestamp`` (constant-time compare)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@register
class WebhookNotifier(Notifier):
    """Options: ``url`` (http/https), ``secret``; optional ``timeout`` seconds (default 10)."""

    type_name = "webhook"

    def send(self, message: Message) -> None:
        """POST the signed JSON; any non-2xx answer or network error is a DeliveryError."""
        body = json.dumps(
            {
                "id": message.id,
                "kind": message.kind,
                "subject": message.subject,
                "body": message.body,
                "department": message.department,
                "severity": message.severity,
                "dedupe_key": message.dedupe_key,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(str(self.options["secret"]), timestamp, body),
        }
        try:
            response = _shared_client().post(
                str(self.options["url"]),
                content=body,
                headers=headers,
                timeout=float(self.options.get("timeout", 10)),
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"channel {self.name}: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryError(f"channel {self.name}: HTTP {response.status_code}")
