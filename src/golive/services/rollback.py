"""Rollback: ``current`` back to the previous release, or a kept one, on every host.

No rebuild and no SQL: the message says plainly that SQL is not undone. Every
host is checked to hold the target release before any host switches. Checkout
mode has no releases to go back to; such services are refused with that reason.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from golive.domain.release import release_order
from golive.domain.workflow import Action
from golive.errors import DeployError
from golive.services import rollout
from golive.services.deployrun import DeployRun, Switched, about, parallel, step, switch_back
from golive.services.jobs import run_jobs
from golive.services.liveness import this_runner
from golive.services.orders import check_transition, get_order
from golive.services.work import HostRef, ItemWork
from golive.store.models import Deployment, User


def request_rollback(session: Session, order_id: int, by: User, *, stage: str | None = None,
                     to_release: str = "") -> Deployment:
    """Write a rollback deployment; the order moves to rolled_back when it succeeds."""
    order = get_order(session, order_id)
    state_stage = order.state.partition(":")[0]
    target_stage = stage or (order.project.stages[-1] if order.state == "done" else state_stage)
    check_transition(session, order_id, Action.ROLLBACK, by, stage=target_stage)
    deployment = Deployment(order_id=order.id, stage=target_stage, kind="rollback",
                            status="pending", requested_by=by.name,
                            target_release=to_release, runner=this_runner())
    session.add(deployment)
    session.flush()
    return deployment


def _targets(run: DeployRun, item: ItemWork, wanted: str) -> dict[int, str]:
    """host id → release to switch to; DeployError if a host lacks one.

    Without ``wanted``: the newest earlier release every host keeps, so that all hosts
    go back to the same one (a release only some hosts kept, left by a deployment that
    failed before its switch, was never served and is passed over)."""
    earlier: dict[int, list[str]] = {}
    for host in item.hosts:
        transport = run.transport(host)
        if wanted:
            if not rollout.release_exists(transport, item, wanted):
                raise DeployError(f"release {wanted} is not kept on host {host.name}",
                                  host=host.name)
            continue
        earlier[host.id] = rollout.earlier_releases(transport, item)
        if not earlier[host.id]:
            raise DeployError(f"host {host.name} has no earlier release to go back to",
                              host=host.name)
    if wanted:
        return {host.id: wanted for host in item.hosts}
    common = set.intersection(*(set(ids) for ids in earlier.values()))
    if not common:
        latest = "; ".join(f"{h.name}: {earlier[h.id][-1]}" for h in item.hosts)
        raise DeployError(f"the hosts keep no earlier release in common ({latest}): pick "
                          f"one with `golive order rollback {run.order_id} --to RELEASE`")
    target = max(common, key=release_order)
    return {host.id: target for host in item.hosts}


def rollback_hosts(run: DeployRun, wanted: str = "") -> None:
    """Switch every artifact service of the order back; switch all back if one fails."""
    for item in run.items:
        if item.mode != "artifact":
            raise about(DeployError("checkout mode keeps no releases to roll back to; "
                                    "redeploy an earlier branch instead"), item)
    plans = {}
    for item in run.items:
        try:
            plans[item.service] = _targets(run, item, wanted)
        except DeployError as exc:
            raise about(exc, item) from None
    try:
        for item in run.items:
            parallel(run, [_switch_job(run, item, host, plans[item.service][host.id])
                           for host in item.hosts])
    except DeployError:
        switch_back(run)
        raise
    for item in run.items:
        run_jobs(run, item)  # jobs reload from the release now current
    run.reporter.log("rolled back; SQL is not undone by a rollback", level="warning")


def _switch_job(run: DeployRun, item: ItemWork, host: HostRef, target: str
                ) -> Callable[[], None]:
    def body() -> str:
        transport = run.transport(host)
        current = rollout.current_release(transport, rollout.base_path(transport, item))
        rollout.switch(transport, item, target)
        run.switched.append(Switched(item, host, current))
        env = run.env(item, "", host, current)
        env["GOLIVE_RELEASE"] = target
        env["GOLIVE_RELEASE_PATH"] = rollout.release_dir(transport, item, target)
        rollout.run_hooks(transport, item.rollback_hooks, env["GOLIVE_RELEASE_PATH"], env,
                          run.log(item, host))
        return f"current → {target} (was {current or 'none'})"

    return lambda: step(run, "rollback", item, host, body)

