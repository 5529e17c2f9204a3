"""Feishu / Lark (飞书) custom bot: an interactive card with a header and a markdown element.

With a secret the body carries ``timestamp`` (seconds, a string) and
``sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))``. User ids (open_id or
user_id) are mentioned as ``<at id=ou_xxx></at>`` in the markdown. Answers
``{"code": 0, "msg": "success"}`` (older bots: ``{"StatusCode": 0, "StatusMessage": ...}``);
11232 (frequency limited) is worth a retry; 19021
(sign match fail) and the others are not.
"""

from __future__ import annotations

import base64
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
    clip_bytes,
    dumps,
    post,
    read_coded,
    title_line,
    with_link,
)

CONTENT_LIMIT = 28000  # bytes; Feishu refuses request bodies over 30 KB
RETRYABLE = frozenset({11232})


def sign(secret: str, timestamp: int | str) -> str:
    """Feishu's signature: the HMAC key is the string to sign, the message is empty."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def template(event: str) -> str:
    if "fail" in event or "error" in event:
        return "red"
    if "succeed" in event or "success" in event or "released" in event:
        return "green"
    return "blue"


def payload(message: Message) -> dict[str, Any]:
    mentions = " ".join(f"<at id={user}></at>" for user in message.mentions.user_ids)
    tail = f"\n{mentions}" if mentions else ""
    content = clip_bytes(with_link(message.markdown, message.link),
                         CONTENT_LIMIT - len(tail.encode())) + tail
    return {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text",
                                 "content": title_line(message.title) or "golive"},
                       "template": template(message.event)},
            "elements": [{"tag": "markdown", "content": content}],
        },
    }


def read(channel: ChannelConfig, reply: Reply) -> Answer:
    return read_coded(channel, reply, ("code", "StatusCode"), ("msg", "StatusMessage"),
                      RETRYABLE)


def send(channel: ChannelConfig, message: Message, *, client: httpx.Client | None = None,
         now: Callable[[], float], timeout: float) -> Answer:
    body = payload(message)
    if channel.secret:
        timestamp = str(int(now()))
        body = {"timestamp": timestamp, "sign": sign(channel.secret, timestamp), **body}
    reply = post(channel, channel.webhook, client=client, timeout=timeout, now=now,
                 content=dumps(body))
    return reply if isinstance(reply, Answer) else read(channel, reply)
