"""The running state of one deployment, shared by deploy and rollback.

``DeployRun`` holds what the engine's threads share: the plain data of the
order's items, the open transports (one per host, reused for the whole
deployment), the hosts switched so far and how to put them back, and the
reporter that writes steps and log lines to the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from golive.adapters.transport import Transport
from golive.adapters.transport.ssh import SshTransport, fingerprint
from golive.errors import DeployError, GoliveError
from golive.services import rollout
from golive.services.progress import Reporter
from golive.services.runtime import Runtime
from golive.services.work import HostRef, ItemWork, open_transport
from golive.store.models import Deployment, Host

MAX_PARALLEL_HOSTS = 16


@dataclass
class Switched:
    """A host switched in this deployment, and how to put it back."""

    item: ItemWork
    host: HostRef
    previous: str | None
    checkout_mode: bool = False


@dataclass
class DeployRun:
    runtime: Runtime
    deployment_id: int
    order_id: int
    project: str
    stage: str
    lane: str
    kind: str
    by: str
    is_last_stage: bool
    reporter: Reporter
    rid: str
    items: list[ItemWork]
    transports: dict[int, Transport] = field(default_factory=dict)
    target_release: str = ""
    canary: bool = False
    pause_after_batch: bool = False
    prune_jobs: bool = False
    delete_branch: bool = False
    full_transfer: bool = False
    """Every host gets the whole archive, never a delta (``--full-transfer``)."""
    pinned: dict[str, dict[str, str]] = field(default_factory=dict)
    """service → the branch and main heads this deployment deploys (fixed by its first run)."""
    pauses: int = 0
    commits: dict[str, str] = field(default_factory=dict)
    moved: set[str] = field(default_factory=set)
    """Services this deployment switched to its new release (``rid``)."""
    """service → the commit deployed (or kept, when unchanged) by this deployment."""
    switched: list[Switched] = field(default_factory=list)
    previous: dict[tuple[int, int], str | None] = field(default_factory=dict)
    finished: dict[tuple[str, int | None, int | None], dict[str, Any]] = field(
        default_factory=dict)
    """(step, service id, host id) → data of the steps an interrupted run of this deployment
    finished: a resumed run checks them on the host instead of doing them again."""
    _host_locks: dict[int, threading.Lock] = field(default_factory=dict)
    _zstd: dict[int, bool] = field(default_factory=dict)

    def finished_before(self, name: str, item: ItemWork, host: HostRef | None
                        ) -> dict[str, Any] | None:
        """The data of step ``name`` if an interrupted run finished it, else None."""
        return self.finished.get((name, item.service_id, host.id if host else None))

    def has_zstd(self, host: HostRef) -> bool:
        """Whether the host can unpack a .tar.zst (asked once per deployment)."""
        if host.id not in self._zstd:
            self._zstd[host.id] = rollout.has_zstd(self.transport(host))
        return self._zstd[host.id]

    def transport(self, host: HostRef) -> Transport:
        """The host's transport, connected once per deployment (the host key pinned)."""
        with self._host_locks.setdefault(host.id, threading.Lock()):
            if host.id not in self.transports:
                transport = open_transport(host)
                if isinstance(transport, SshTransport):
                    presented = transport.connect()
                    if not host.host_key:
                        pin_host_key(self.runtime, host, presented, self.log(host=host))
                self.transports[host.id] = transport
            return self.transports[host.id]

    def log(self, item: ItemWork | None = None, host: HostRef | None = None,
            level: str = "info") -> Callable[[str], None]:
        service = item.service if item else ""
        host_name = host.name if host else ""
        return lambda text: self.reporter.log(text, service=service, host=host_name,
                                              level=level)

    def env(self, item: ItemWork, commit: str, host: HostRef | None = None,
            previous: str | None = None) -> dict[str, str]:
        path = ""
        if host is not None:
            path = rollout.release_dir(self.transport(host), item, self.rid)
        return {
            "GOLIVE_PROJECT": self.project, "GOLIVE_SERVICE": item.service,
            "GOLIVE_STAGE": self.stage, "GOLIVE_ORDER_ID": str(self.order_id),
            "GOLIVE_BRANCH": item.branch, "GOLIVE_COMMIT": commit,
            "GOLIVE_RELEASE": self.rid if item.mode == "artifact" else "",
            "GOLIVE_RELEASE_PATH": path if item.mode == "artifact" else "",
            "GOLIVE_PREVIOUS_RELEASE": previous or "", "GOLIVE_HOST": host.name if host else "",
            "GOLIVE_DEPLOY_KIND": self.kind,
        }

    def between_batches(self, item: ItemWork, done: int, total: int) -> None:
        """With pause_after_batch, wait after each batch but the last for a resume."""
        if not self.pause_after_batch or done >= total:
            return
        self.pauses += 1
        self.log(item, level="warning")(
            f"paused after batch {done} of {total}: run `golive order resume {self.order_id}` "
            "to go on")
        self._set_status("paused")  # after the log line: whoever sees "paused" can read why
        while self._released() < self.pauses:
            time.sleep(0.5)
        self._set_status("running")
        self.log(item)("resumed")

    def _set_status(self, status: str) -> None:
        with self.runtime.store.session() as session:
            session.get_one(Deployment, self.deployment_id).status = status
            session.commit()

    def _released(self) -> int:
        with self.runtime.store.session() as session:
            return session.get_one(Deployment, self.deployment_id).batches_released

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()


def pin_host_key(runtime: Runtime, host: HostRef, public_key: str,
                 log: Callable[[str], None]) -> None:
    """Store the key a host showed on first contact; later contacts must show the same."""
    with runtime.store.session() as session:
        session.execute(update(Host).where(Host.id == host.id, Host.host_key.is_(None))
                        .values(host_key=public_key))
        session.commit()
    log(f"host key pinned on first contact: {fingerprint(public_key)}")


def parallel(run: DeployRun, jobs: list[Callable[[], None]], limit: int = MAX_PARALLEL_HOSTS
             ) -> None:
    """Run the jobs on up to ``limit`` threads; wait for all, then raise the first error."""
    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(limit, len(jobs)))) as pool:
        futures = [pool.submit(job) for job in jobs]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error


def step(run: DeployRun, name: str, item: ItemWork, host: HostRef | None,
         body: Callable[[], str], data: dict[str, Any] | None = None) -> None:
    """Run ``body`` as a recorded step; its return value is the step's message, and
    ``data`` (which ``body`` may fill) what a resumed run needs from it.

    A DeployError leaves with the service (and host) named in its message."""
    step = run.reporter.start_step(name, service_id=item.service_id,
                                   host_id=host.id if host else None)
    try:
        message = body()
    except DeployError as exc:
        run.reporter.end_step(step, "failed", exc.message)  # the step names service and host
        raise about(exc, item, host) from None
    except GoliveError as exc:
        run.reporter.end_step(step, "failed", exc.message)
        raise
    except Exception as exc:
        run.reporter.end_step(step, "failed", f"internal error: {exc}")
        raise
    run.reporter.end_step(step, "done", message, data)


def about(exc: DeployError, item: ItemWork, host: HostRef | None = None) -> DeployError:
    """``exc`` with the service (and host) named at the front of its message."""
    if not exc.service:
        exc.service = item.service
        exc.message = f"service {item.service}: {exc.message}"
    if host is not None and not exc.host:
        exc.host = host.name
        exc.message = f"{exc.message} (host {host.name})"
    exc.args = (exc.message,)
    return exc


def switch_back(run: DeployRun) -> None:
    """Put every host switched in this deployment back where it was."""
    for done in reversed(run.switched):
        log = run.log(done.item, done.host, level="warning")
        try:
            transport = run.transport(done.host)
            if done.checkout_mode:
                if done.previous:
                    rollout.checkout_back(transport, done.item, done.previous)
                    if done.item.build.strip():  # the working copy needs its build output
                        rollout.run_hooks(transport, [done.item.build],
                                          rollout.base_path(transport, done.item),
                                          run.env(done.item, done.previous, done.host), log)
                    log(f"switched back to {done.previous[:12]}")
                else:
                    log("first checkout on this host: nothing to switch back to")
                continue
            rollout.switch(transport, done.item, done.previous)
            log(f"switched back to {done.previous or 'no release'}")
        except GoliveError as exc:
            run.log(done.item, done.host, level="error")(f"switching back failed: {exc}")


def discard_release(run: DeployRun) -> None:
    """After a failure: remove this deployment's release from every host that received it
    and does not serve it, so that no later rollback or cleanup takes it for a good one."""
    items = {item.service_id: item for item in run.items}
    for service_id, host_id in list(run.previous):
        item = items[service_id]
        host = next(h for h in item.hosts if h.id == host_id)
        try:
            if rollout.discard(run.transport(host), item, run.rid):
                run.log(item, host)(f"release {run.rid} removed: the deployment failed")
        except GoliveError as exc:
            run.log(item, host, level="warning")(f"release {run.rid} not removed: {exc}")
