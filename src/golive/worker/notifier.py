"""Sending the notification outbox in the background of a golive process.

``sender`` is a thread that delivers what is due every half second while a
deployment runs (a slow or failing robot never holds the deployment up). When a
command ends, ``drain`` gives the outbox a few seconds; what is still queued (a
retry waiting for its backoff) goes out with the next golive process, the server,
or ``golive notify send``.
"""

from __future__ import annotations

import time

from golive.services import notify
from golive.services.runtime import Runtime
from golive.services.ticker import Ticker

DRAIN_SECONDS = 5.0


def sender(runtime: Runtime, every: float = 0.5) -> Ticker:
    """``with sender(runtime):`` delivers the outbox every ``every`` seconds meanwhile."""
    return Ticker(lambda: notify.deliver_due(runtime), every, "golive-notify")


def drain(runtime: Runtime, seconds: float = DRAIN_SECONDS) -> None:
    """Deliver what is due now, for up to ``seconds``; the rest stays queued."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and notify.deliver_due(runtime):
        pass
