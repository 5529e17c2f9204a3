"""DingTalk (钉钉) custom robot: a markdown message, optionally signed.

``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles", "atUserIds",
"isAtAll": false}}``; the text carries ``@<mobile>`` / ``@<userId>`` for each mention,
which DingTalk needs to highlight them. With a secret, ``timestamp`` (ms) and ``sign``
go into the query: ``sign = urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")))``.
Answers ``{"errcode": 0, "errmsg": "ok"}``; 130101 (send too fast) and -1 (system busy)
are worth a retry; 310000 (sign not match, keywords, IP list) and others are not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import httpx

from golive.adapters.notify.base import (
    Answer,
    ChannelConfig,
    Message,
    Reply,
    clip_bytes,
    dumps,
    post,
    read_coded,
    title_line,
    with_link,
)

TEXT_LIMIT = 20000  # bytes
RETRYABLE = frozenset({130101, -1})


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, url-encoded, as it goes into the query string."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


def payload(message: Message) -> dict[str, Any]:
    mentions = message.mentions
    ats = " ".join(f"@{who}" for who in (*mentions.mobiles, *mentions.user_ids))
    tail = f"\n\n{ats}" if ats else ""
    text = clip_bytes(with_link(message.markdown, message.link), TEXT_LIMIT - len(tail.encode()))
    return {
        "msgtype": "markdown",
        "markdown": {"title": title_line(message.title) or "golive", "text": text + tail},
        "at": {"atMobiles": list(mentions.mobiles), "atUserIds": list(mentions.user_ids),
               "isAtAll": False},
    }


def read(channel: ChannelConfig, reply: Reply) -> Answer:
    return read_coded(channel, reply, ("errcode",), ("errmsg",), RETRYABLE)


def send(channel: ChannelConfig, message: Message, *, client: httpx.Client | None = None,
         now: Callable[[], float], timeout: float) -> Answer:
    url = channel.webhook
    if channel.secret:
        url = signed_url(url, channel.secret, int(now() * 1000))
    reply = post(channel, url, client=client, timeout=timeout, now=now,
                 content=dumps(payload(message)))
    return reply if isinstance(reply, Answer) else read(channel, reply)
