"""Sending the notification outbox in the background of a golive process.

``Sender`` is a thread that delivers what is due every half second while a
deployment runs (a slow or failing robot never holds the deployment up). When a
command ends, ``drain`` gives the outbox a few seconds; what is still queued (a
retry waiting for its backoff) goes out with the next golive process, the server,
or ``golive notify send``.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from golive.services import notify
from golive.services.runtime import Runtime
from golive.store.models import Notification, utcnow

DRAIN_SECONDS = 5.0


class Sender:
    def __init__(self, runtime: Runtime, every: float = 0.5) -> None:
        self._runtime, self._every = runtime, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="golive-notify", daemon=True)

    def __enter__(self) -> Sender:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                notify.deliver_due(self._runtime)
            except Exception:  # noqa: BLE001 - the next round tries again; deploys go on
                continue


def drain(runtime: Runtime, seconds: float = DRAIN_SECONDS) -> None:
    """Deliver what is due now, for up to ``seconds``; the rest stays queued."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not notify.deliver_due(runtime):
            return
        with runtime.store.session() as session:
            waiting = session.scalar(select(Notification.id).where(
                Notification.status == "queued", Notification.next_at <= utcnow()).limit(1))
        if waiting is None:
            return
