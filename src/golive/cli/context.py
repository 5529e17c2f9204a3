"""What every command needs: the runtime, a session, and the acting user."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from golive.api.registry import Work
from golive.services.runtime import open_runtime
from golive.services.users import acting_user
from golive.worker.notifier import drain


@dataclass
class CliState:
    as_user: str = ""


STATE = CliState()


@contextmanager
def unit_of_work() -> Iterator[Work]:
    """One transaction for one command: committed when the command ends without error."""
    runtime = open_runtime()
    try:
        with runtime.store.session() as session:
            user = acting_user(session, STATE.as_user or runtime.settings.user or None)
            # a first admin created just now is committed before the operation runs, as
            # the server commits a token's last use: an operation must not start holding
            # SQLite's one write lock that its helper sessions (locks, logs) wait for
            session.commit()
            yield Work(runtime, session, user)
            session.commit()
        drain(runtime)  # the notifications this command queued
    finally:
        runtime.close()
