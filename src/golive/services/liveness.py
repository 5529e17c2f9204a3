"""Telling a live run from a dead one: each run records the process running it.

A runner is ``host:pid:start-time``. On the same host, a runner is alive when a
process with that pid exists and started at that time (a reused pid has another
start time). On another host golive cannot tell here (agents heartbeat for that):
such runs are left alone.
"""

from __future__ import annotations

import os
import socket
from functools import cache


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None  # field 22: start time in clock ticks


@cache
def this_runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid()) or '0'}"


def is_dead(runner: str) -> bool:
    """True only when ``runner`` is a process of this host that no longer runs."""
    try:
        host, pid, started = runner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _start_time(int(pid)) != started
