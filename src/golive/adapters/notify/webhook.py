"""A generic JSON webhook: golive's own payload, signed like GitHub's webhooks.

Body: ``{"event", "title", "text", "link", "mentions": {"mobiles", "user_ids", "emails"},
**data}``. Headers: ``X-Golive-Event``, ``X-Golive-Timestamp`` (seconds) and, with a
secret, ``X-Golive-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>``.
Any 2xx answer is success; 429 and 5xx are worth a retry.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import httpx

from golive.adapters.notify.base import (
    Answer,
    ChannelConfig,
    Message,
    Reply,
    dumps,
    http_failure,
    post,
    secrets_of,
    shown,
    title_line,
)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Golive-Signature header's value for ``body`` sent at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def payload(message: Message) -> dict[str, Any]:
    mentions = message.mentions
    return {
        "event": message.event,
        "title": title_line(message.title),
        "text": message.text,
        "link": message.link,
        "mentions": {"mobiles": list(mentions.mobiles), "user_ids": list(mentions.user_ids),
                     "emails": list(mentions.emails)},
        **message.data,
    }


def read(channel: ChannelConfig, reply: Reply) -> Answer:
    if 200 <= reply.status < 300:
        return Answer(ok=True, status=reply.status, body=shown(reply.text, secrets_of(channel)),
                      retryable=False)
    return http_failure(channel, reply)


def send(channel: ChannelConfig, message: Message, *, client: httpx.Client | None = None,
         now: Callable[[], float], timeout: float) -> Answer:
    body = dumps(payload(message))
    timestamp = str(int(now()))
    headers = {"X-Golive-Event": message.event, "X-Golive-Timestamp": timestamp,
               "User-Agent": "golive-webhook"}
    if channel.secret:
        headers["X-Golive-Signature"] = sign(channel.secret, timestamp, body)
    reply = post(channel, channel.webhook, client=client, timeout=timeout, now=now,
                 content=body, headers=headers)
    return reply if isinstance(reply, Answer) else read(channel, reply)
