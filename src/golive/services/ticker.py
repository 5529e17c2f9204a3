"""A call repeated every few seconds on a background thread, for as long as a ``with``
block lasts: a deployment's lock heartbeat, the notification sender."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Ticker:
    """Calls ``tick`` every ``every`` seconds until the block ends (and once at entry
    when ``at_start``). A tick that raises is tried again next time: what the ticker
    serves (a deployment) goes on."""

    def __init__(self, tick: Callable[[], object], every: float, name: str, *,
                 at_start: bool = False) -> None:
        self._tick, self._every, self._at_start = tick, every, at_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def __enter__(self) -> Ticker:
        if self._at_start:
            self._tick()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - the next tick tries again
                continue
