"""Slack incoming webhook: ``{"text": ..., "blocks": [...]}``.

The Markdown body is turned into Slack's mrkdwn (``**b**`` → ``*b*``, ``[t](u)`` → ``<u|t>``,
headings → bold lines); members are mentioned as ``<@U123>``. Slack answers ``ok`` (200);
errors are HTTP statuses with a word (``invalid_payload``, ``no_service``…); 429 comes
with Retry-After.
"""

from __future__ import annotations

import re
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

SECTION_LIMIT = 3000  # characters of a section's text
HEADER_LIMIT = 150    # characters of a header block's text


def mrkdwn(markdown: str) -> str:
    """Markdown as Slack's mrkdwn (the common cases: bold, links, headings, bullets)."""
    text = markdown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"<\2|\1>", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)
    text = re.sub(r"__(.+?)__", r"*\1*", text)
    text = re.sub(r"^#{1,6}\s+(.+?)\s*#*$", r"*\1*", text, flags=re.M)
    return re.sub(r"^(\s*)[-+]\s+", r"\1• ", text, flags=re.M)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(message: Message) -> dict[str, Any]:
    title = title_line(message.title) or "golive"
    mentions = " ".join(f"<@{user}>" for user in message.mentions.user_ids)
    tail = f"\n{mentions}" if mentions else ""
    body = _clip(mrkdwn(message.markdown), SECTION_LIMIT - len(tail)) + tail
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_LIMIT)}},
    ]
    if body.strip():
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
    if message.link:
        blocks.append({"type": "context",
                       "elements": [{"type": "mrkdwn", "text": f"<{message.link}>"}]})
    return {"text": f"{title} {mentions}".strip(), "blocks": blocks}


def read(channel: ChannelConfig, reply: Reply) -> Answer:
    if 200 <= reply.status < 300:
        return Answer(ok=True, status=reply.status, body=shown(reply.text, secrets_of(channel)),
                      retryable=False)
    return http_failure(channel, reply)


def send(channel: ChannelConfig, message: Message, *, client: httpx.Client | None = None,
         now: Callable[[], float], timeout: float) -> Answer:
    reply = post(channel, channel.webhook, client=client, timeout=timeout, now=now,
                 content=dumps(payload(message)))
    return reply if isinstance(reply, Answer) else read(channel, reply)
