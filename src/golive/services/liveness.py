"""Telling a live run from a dead one: each run records the process running it.

A runner is ``host:pid:start-time``. On the same host, a runner is alive when a
process with that pid exists and started at that time (a reused pid has another
start time). On another host golive cannot tell here: such runs are left alone.

An agent (``golive agent``) runs as ``agent:<name>@host:pid:start-time``: it may run
on any machine, so its runs are judged by its heartbeat in the store instead
(``services/agents.py``), wherever the judge runs — never by the pid here. A
deployment waiting in an agents' queue has the runner ``queue:<name>``: no process holds
it, so it is never dead (a server restart leaves it waiting for an agent).
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


AGENT_PREFIX = "agent:"
_agent_name: list[str] = []


def act_as_agent(name: str) -> None:
    """From now on this process runs deployments as the agent ``name``."""
    _agent_name[:] = [name]
    this_runner.cache_clear()


def is_agent_runner(runner: str) -> bool:
    return runner.startswith(AGENT_PREFIX)


@cache
def this_runner() -> str:
    process = f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid()) or '0'}"
    return f"{AGENT_PREFIX}{_agent_name[0]}@{process}" if _agent_name else process


def is_dead(runner: str) -> bool:
    """True only when ``runner`` is a process of this host that no longer runs."""
    if is_agent_runner(runner) or runner.startswith("queue:"):
        return False  # judged by its heartbeat (services/agents.py); waits for an agent
    try:
        host, pid, started = runner.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _start_time(int(pid)) != started
