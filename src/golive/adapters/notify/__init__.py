"""Notification channels: ``send(channel, message)`` → ``Answer``, whatever happens.

One module per channel type (``wecom``, ``dingtalk``, ``feishu``, ``slack``, ``webhook``,
``email``); ``base`` holds the shared types. ``send`` never raises for network errors,
HTTP errors or vendor errors: they come back as an ``Answer`` (``retryable`` says whether
trying again later may help, ``retry_after`` how long the vendor asked to wait).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType

import httpx

from golive.adapters.notify import dingtalk, feishu, slack, webhook, wecom
from golive.adapters.notify import email as email_channel
from golive.adapters.notify.base import Answer, ChannelConfig, Mentions, Message

__all__ = ["CHANNEL_TYPES", "Answer", "ChannelConfig", "Mentions", "Message", "send"]

_MODULES: dict[str, ModuleType] = {
    "wecom": wecom,
    "dingtalk": dingtalk,
    "feishu": feishu,
    "slack": slack,
    "webhook": webhook,
    "email": email_channel,
}
CHANNEL_TYPES = tuple(_MODULES)


def send(channel: ChannelConfig, message: Message, *, client: httpx.Client | None = None,
         now: Callable[[], float] = time.time, timeout: float = 10.0) -> Answer:
    """Send ``message`` through ``channel``; the vendor's answer, or why there was none.

    ``client``: an httpx client to reuse (its own timeout is overridden by ``timeout``);
    without one a client is made and closed per call. ``now``: the clock for signatures'
    timestamps and Retry-After dates."""
    module = _MODULES.get(channel.type)
    if module is None:
        return Answer(ok=False, status=None, body="", retryable=False,
                      error=f"unknown channel type {channel.type!r}")
    if channel.type != "email" and not channel.webhook:
        return Answer(ok=False, status=None, body="", retryable=False,
                      error=f"{channel.type}: no webhook URL")
    answer: Answer = module.send(channel, message, client=client, now=now, timeout=timeout)
    return answer
