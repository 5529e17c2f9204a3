"""WeCom (企业微信) group robot: a markdown message to the robot's webhook URL.

``{"msgtype": "markdown", "markdown": {"content": ..., "mentioned_mobile_list": [...]}}``;
user ids are mentioned as ``<@userid>`` in the content. The robot answers
``{"errcode": 0, "errmsg": "ok"}``; 45009 (api freq out of limit) and -1 (system busy)
are worth a retry, other codes are not.
"""

from __future__ import annotations

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

CONTENT_LIMIT = 4096  # bytes of markdown.content
RETRYABLE = frozenset({45009, -1})


def payload(message: Message) -> dict[str, Any]:
    mentions = " ".join(f"<@{user}>" for user in message.mentions.user_ids)
    title = title_line(message.title)
    body = with_link(message.markdown, message.link)
    head = f"**{title}**\n" if title and title not in body else ""
    tail = f"\n{mentions}" if mentions else ""
    content = clip_bytes(head + body, CONTENT_LIMIT - len(tail.encode())) + tail
    markdown: dict[str, Any] = {"content": content}
    if message.mentions.mobiles:
        markdown["mentioned_mobile_list"] = list(message.mentions.mobiles)
    return {"msgtype": "markdown", "markdown": markdown}


def read(channel: ChannelConfig, reply: Reply) -> Answer:
    return read_coded(channel, reply, ("errcode",), ("errmsg",), RETRYABLE)


def send(channel: ChannelConfig, message: Message, *, client: httpx.Client | None = None,
         now: Callable[[], float], timeout: float) -> Answer:
    reply = post(channel, channel.webhook, client=client, timeout=timeout, now=now,
                 content=dumps(payload(message)))
    return reply if isinstance(reply, Answer) else read(channel, reply)
