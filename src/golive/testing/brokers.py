"""Cleaning a broker after a test or a benchmark run: each run names its queues with a
prefix of its own (GOLIVE_QUEUE_PREFIX), so several runs share Redis or RabbitMQ
without taking each other's tasks; at the end its queues go."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from kombu import Connection

from golive.domain.zones import queue_name


def forget_queues(url: str, prefix: str, zones: Iterable[str] = ("",)) -> None:
    """The run's queues and their exchanges (on Redis: every key naming the prefix)."""
    if url.startswith("redis"):
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)
        client.close()
        return
    with Connection(url, connect_timeout=5) as connection:
        channel = connection.channel()
        for zone in zones:
            name = queue_name(prefix, zone)  # Celery names the queue's exchange alike
            for delete in ("queue_delete", "exchange_delete"):
                try:
                    getattr(channel, delete)(name)
                except Exception:  # noqa: BLE001 - one never declared is fine
                    channel = connection.channel()  # AMQP closes a channel on an error
