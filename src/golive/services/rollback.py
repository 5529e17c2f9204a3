"""Rollback: ``current`` back to the previous release, or a kept one, on every host.

No rebuild and no SQL: the message says plainly that SQL is not undone. Every
host is checked to hold the target release before any host switches. Checkout
mode has no releases to go back to; such services are refused with that reason.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.domain.release import release_order
from golive.domain.workflow import Action
from golive.errors import DeployError
from golive.services import agents, lanes, locks, occupancy, rollout
from golive.services.deployrun import DeployRun, Switched, about, parallel, step, switch_back
from golive.services.history import note
from golive.services.jobs import run_jobs
from golive.services.liveness import this_runner
from golive.services.orders import check_transition, get_order
from golive.services.requests import engine_of, lock_keys
from golive.services.work import HostRef, ItemWork
from golive.store.models import CommitLedger, Deployment, Order, User


def request_rollback(session: Session, order_id: int, by: User, *, stage: str | None = None,
                     to_release: str = "", lock_wait: float = 0.0) -> Deployment:
    """Write a rollback deployment; the order moves to rolled_back when it succeeds."""
    order = get_order(session, order_id)
    state_stage = order.state.partition(":")[0]
    target_stage = stage or (order.project.stages[-1] if order.state == "done" else state_stage)
    check_transition(session, order_id, Action.ROLLBACK, by, stage=target_stage)
    hold = lanes.hold_of(session, order.id, target_stage)
    lane = hold.lane if hold else lanes.preview_lane(session, order, target_stage)
    keys = lock_keys(order, target_stage, lane)
    locks.wait_until_free(engine_of(session), keys, lock_wait)
    deployment = Deployment(order_id=order.id, stage=target_stage, kind="rollback",
                            action=Action.ROLLBACK.value, lane=lane, status="pending",
                            requested_by=by.name, target_release=to_release,
                            runner=this_runner(),
                            zone=agents.zone_for(session, order, target_stage, lane))
    session.add(deployment)
    session.flush()
    locks.acquire(session, keys, deployment)
    note(session, order, by.name, "deployment", f"deployment {deployment.id} rollback on "
         f"{target_stage}" + (f" to {to_release}" if to_release else ""))
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
    _record_occupancy(run, plans)
    run.reporter.log("rolled back; SQL is not undone by a rollback", level="warning")


def _record_occupancy(run: DeployRun, plans: dict[str, dict[int, str]]) -> None:
    """The board shows whose release each service serves after the rollback."""
    with run.runtime.store.session() as session:
        for item in run.items:
            target = next(iter(plans[item.service].values()), "")
            row = session.scalar(select(CommitLedger).where(
                CommitLedger.service_id == item.service_id, CommitLedger.release_id == target))
            order_id = row.order_id if row else run.order_id
            branch = item.branch
            if row is not None and row.order_id != run.order_id:
                branch = next((i.branch for i in session.get_one(Order, row.order_id).items
                               if i.service_id == item.service_id), branch)
            occupancy.record(session, service_id=item.service_id, stage=run.stage,
                             lane=item.lane, order_id=order_id, branch=branch,
                             commit=row.deployed_commit if row else "",
                             deployment_id=run.deployment_id,
                             note=f"rolled back to {target} by order {run.order_id}")
        session.commit()


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

