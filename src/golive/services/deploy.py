"""One deployment of an order on one stage, end to end (DESIGN §3).

``request_deployment`` moves the order to ``<stage>:deploying`` and writes a
deployment record; a runner (``worker/``) then calls ``run_deployment`` with its
id, in this process or another. The engine:

1. plans (``domain.plan``) from the branch heads and the ledgers;
2. artifact mode: merges, builds and packs each changed service once on the
   control machine (or reuses the artifact an earlier stage built);
3. phase one: every host of every changed service receives and unpacks its
   release, in parallel — no host serves new code yet;
4. runs the order's SQL not yet run on each database;
5. phase two: switches ``current`` batch by batch with post-deploy commands and
   the health check after each batch (checkout mode: fetch, checkout, build,
   post-deploy on each host); any failure switches every host already switched
   in this deployment back, and the deployment fails;
6. records the commit ledger, removes old releases, and after the last stage
   pushes the merge to the main branch with the tag ``golive/<order>``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.adapters.git import Mirror
from golive.adapters.sqltarget import open_target
from golive.adapters.transport import Transport
from golive.domain import plan as planning
from golive.domain.release import release_id
from golive.domain.workflow import Action
from golive.errors import DeployError, GoliveError, InputError
from golive.services import ledger, rollout
from golive.services.artifacts import Artifact, prepare_artifact
from golive.services.deployrun import (
    DeployRun,
    Switched,
    discard_release,
    parallel,
    step,
    switch_back,
)
from golive.services.jobs import plan_item_jobs, run_jobs
from golive.services.liveness import this_runner
from golive.services.orders import (
    check_transition,
    get_order,
    require_deployer,
    service_dialect_by_id,
    transition,
)
from golive.services.progress import Reporter
from golive.services.rollback import rollback_hosts
from golive.services.runtime import Runtime
from golive.services.sqlops import check_review
from golive.services.sqlrun import SqlJob, SqlRun, run_statements
from golive.services.work import HostRef, ItemWork, load_items, secrets_of
from golive.store.models import Deployment, Order, User, utcnow


def natural_stage(order: Order) -> str:
    """The stage a deploy of ``order`` goes to by default (the rules check it)."""
    stages = tuple(order.project.stages)
    current, _, phase = order.state.partition(":")
    if order.state == "done":
        return stages[-1]
    if current not in stages:
        return stages[0]
    index = stages.index(current)
    if phase == "passed" and index + 1 < len(stages):
        return stages[index + 1]
    return current


def request_deployment(session: Session, order_id: int, by: User, *, stage: str | None = None,
                       kind: str = "iterative", lane: str = "",
                       action: str = Action.DEPLOY.value, only_hosts: tuple[str, ...] = (),
                       pause_after_batch: bool = False, prune_jobs: bool = False
                       ) -> Deployment:
    """Move the order to deploying and write the deployment record (caller commits).

    A canary (``only_hosts``) is checked like the deploy it previews but leaves the
    order's state alone and records no commit ledger: the deploy to every host
    that follows moves the order.
    """
    if kind not in ("iterative", "full"):
        raise InputError(f"unknown deploy kind {kind!r}: iterative or full")
    order = get_order(session, order_id)
    target = stage or natural_stage(order)
    if only_hosts:
        check_transition(session, order_id, action, by, stage=target)
        _check_canary_hosts(order, target, lane, only_hosts)
    else:
        order = transition(session, order_id, action, by, stage=target)
    check_review(session, order, target)  # raising here undoes the transition above
    deployment = Deployment(order_id=order.id, stage=target, lane=lane, kind=kind,
                            status="pending", requested_by=by.name, runner=this_runner(),
                            only_hosts=list(only_hosts), pause_after_batch=pause_after_batch,
                            prune_jobs=prune_jobs)
    session.add(deployment)
    session.flush()
    return deployment


def _check_canary_hosts(order: Order, stage: str, lane: str, only: tuple[str, ...]) -> None:
    known = {sh.host.name for item in order.items for setting in item.service.stages
             if setting.stage == stage for sh in setting.hosts
             if sh.kind == "deploy" and (not lane or sh.lane == lane)}
    unknown = sorted(set(only) - known)
    if unknown:
        raise InputError(f"--hosts names {', '.join(unknown)}, not a host of this order on "
                         f"{stage}: {', '.join(sorted(known))}")


def resume(session: Session, order_id: int, by: User) -> Deployment:
    """Let a deployment paused between batches go on by one batch."""
    order = get_order(session, order_id)
    deployment = session.scalar(select(Deployment).where(
        Deployment.order_id == order_id, Deployment.status == "paused"
    ).order_by(Deployment.id.desc()))
    if deployment is None:
        raise InputError(f"order {order_id} has no deployment paused between batches")
    require_deployer(session, order, deployment.stage, by)
    deployment.batches_released += 1
    session.flush()
    return deployment


def mirror_for(runtime: Runtime, item: ItemWork) -> Mirror:
    return Mirror.at(runtime.settings.home / "repos", item.repo)


def limit_hosts(items: list[ItemWork], only: tuple[str, ...]) -> list[ItemWork]:
    """The items with their hosts limited to ``only`` (a canary); all hosts when empty."""
    if not only:
        return items
    for item in items:
        item.hosts = [h for h in item.hosts if h.name in only]
    return [item for item in items if item.hosts]


def build_plan(runtime: Runtime, session: Session, order: Order, stage: str, kind: str,
               lane: str = "", only_hosts: tuple[str, ...] = ()) -> planning.Plan:
    """Fetch the mirrors and compute what a deployment would do; touches no host."""
    inputs = []
    jobs = []
    for item in limit_hosts(load_items(order, stage, runtime.box, lane), only_hosts):
        jobs += plan_item_jobs(session, item, stage)
        mirror = mirror_for(runtime, item)
        try:
            mirror.fetch()
            branch_head = mirror.resolve(item.branch)
            main_head = mirror.resolve(item.main_branch) if item.mode == "artifact" else ""
        except DeployError as exc:
            exc.service = item.service
            exc.message = f"service {item.service}: {exc.message}"
            exc.args = (exc.message,)
            raise
        status = ledger.sql_status(session, item.database.id, order.id) if item.database else {}
        inputs.append(planning.ServiceInput(
            service=item.service, mode=item.mode, branch=item.branch, branch_head=branch_head,
            main_head=main_head, ledger=ledger.commit_entry(session, order.id, item.service_id,
                                                            stage),
            hosts=tuple(h.name for h in item.hosts), batch=item.batch,
            database=item.database.name if item.database else "",
            statements=tuple(planning.StatementInput(s.position, s.checksum, s.text)
                             for s in item.statements),
            sql_status=status, dialect=service_dialect_by_id(session, item.service_id),
            approved=frozenset(order.sql_approved_checksums or ()),
        ))
    return planning.make_plan(order.id, stage, kind, inputs, jobs)


def _prepare(run: DeployRun, item: ItemWork, svc_plan: planning.ServicePlan) -> Artifact:
    mirror = mirror_for(run.runtime, item)
    result: list[Artifact] = []

    def body() -> str:
        artifact = prepare_artifact(
            run.runtime.settings.home, mirror, svc_plan.main_head, svc_plan.branch_head,
            build=item.build, timeout=item.build_timeout, folders=item.pack,
            exclude=item.exclude,
            merge_message=f"Merge {item.branch} (golive order {run.order_id})",
            work_dir=run.runtime.settings.home / "work" / f"d{run.deployment_id}" / item.service,
            env=lambda commit: run.env(item, commit), on_line=run.log(item),
        )
        result.append(artifact)
        how = "reused from an earlier stage" if artifact.reused else "built"
        return f"{how}: merge {artifact.merge_commit[:12]}, {artifact.archive.files} file(s)"

    step(run, "build", item, None, body)
    return result[0]


def _distribute(run: DeployRun, item: ItemWork, artifact: Artifact) -> None:
    marker = f"{run.rid} {artifact.merge_commit} {artifact.archive.sha256}"

    def job(host: HostRef) -> Callable[[], None]:
        def body() -> str:
            transport = run.transport(host)
            archive = artifact.for_host(run.has_zstd(host))
            previous = rollout.distribute(transport, item, run.rid, archive, marker,
                                          run.log(item, host))
            run.previous[(item.service_id, host.id)] = previous
            return f"release {run.rid} ready; current {previous or 'none'}"

        return lambda: step(run, "receive", item, host, body)

    parallel(run, [job(h) for h in item.hosts], item.parallel)


def _run_sql(run: DeployRun, item: ItemWork) -> SqlRun:
    if not item.statements or item.database is None:
        return SqlRun()
    database = item.database
    target = open_target(database.name, database.url, database.statement_timeout)
    job = SqlJob(run.runtime.store.sessions, target, database.id, run.order_id,
                 run.deployment_id, run.stage, item.service, run.by, item.statements,
                 item.transactional, run.log(item))
    counts: list[SqlRun] = []

    def body() -> str:
        counts.append(run_statements(job))
        return f"{counts[0].ran} ran, {counts[0].skipped} already ran"

    try:
        step(run, "sql", item, None, body)
    finally:
        target.close()
    return counts[0]


def _in_batches(run: DeployRun, item: ItemWork, plan: planning.ServicePlan, name: str,
                body: Callable[[HostRef], str]) -> None:
    """Run ``body`` on the item's hosts batch by batch (a batch's hosts in parallel),
    recorded as step ``name``, pausing between batches when asked to."""
    hosts = {h.name: h for h in item.hosts}

    def job(host: HostRef) -> Callable[[], None]:
        return lambda: step(run, name, item, host, lambda: body(host))

    for done, batch in enumerate(plan.batches, start=1):
        parallel(run, [job(hosts[host]) for host in batch], item.parallel)
        run.between_batches(item, done, len(plan.batches))


def _after_switch(run: DeployRun, item: ItemWork, transport: Transport, cwd: str,
                  env: dict[str, str], host: HostRef) -> None:
    rollout.run_hooks(transport, item.post_deploy, cwd, env, run.log(item, host))
    rollout.health_check(transport, item, cwd, env, run.log(item, host))


def _switch_artifact(run: DeployRun, item: ItemWork, plan: planning.ServicePlan,
                     commit: str) -> None:
    def body(host: HostRef) -> str:
        transport = run.transport(host)
        previous = run.previous.get((item.service_id, host.id))
        rollout.switch(transport, item, run.rid)
        run.switched.append(Switched(item, host, previous))
        _after_switch(run, item, transport, rollout.release_dir(transport, item, run.rid),
                      run.env(item, commit, host, previous), host)
        return f"current → {run.rid}"

    _in_batches(run, item, plan, "switch", body)


def _switch_checkout(run: DeployRun, item: ItemWork, plan: planning.ServicePlan) -> str:
    heads: list[str] = []

    def body(host: HostRef) -> str:
        transport = run.transport(host)
        before, head = rollout.checkout(transport, item, run.log(item, host))
        run.switched.append(Switched(item, host, before or None, checkout_mode=True))
        heads.append(head)
        cwd = rollout.base_path(transport, item)
        env = run.env(item, head, host)
        if item.build.strip():
            rollout.run_hooks(transport, [item.build], cwd, env, run.log(item, host))
        _after_switch(run, item, transport, cwd, env, host)
        return f"{item.branch} at {head[:12]}"

    _in_batches(run, item, plan, "checkout", body)
    return heads[0] if heads else plan.branch_head


def _finish_service(run: DeployRun, item: ItemWork, plan: planning.ServicePlan,
                    commit: str) -> None:
    if run.canary:
        run.log(item)("canary: the ledger is not updated; deploy to every host to finish")
        return
    with run.runtime.store.session() as session:
        entry = planning.LedgerEntry(plan.branch_head, plan.main_head, commit,
                                     run.rid if item.mode == "artifact" else "")
        ledger.record_commit(session, run.order_id, item.service_id, run.stage, entry,
                             run.deployment_id)
        session.commit()
    if item.mode == "artifact":
        def clean(host: HostRef) -> Callable[[], None]:
            def body() -> None:
                try:
                    rollout.cleanup(run.transport(host), item, run.log(item, host))
                except GoliveError as exc:
                    run.log(item, host, level="warning")(f"old releases not removed: {exc}")
            return body

        parallel(run, [clean(h) for h in item.hosts], item.parallel)


def _push_merges(run: DeployRun) -> None:
    """After the last stage: each merge onto the main branch, tagged golive/<order>."""
    with run.runtime.store.session() as session:
        entries = {item.service_id: ledger.commit_entry(session, run.order_id, item.service_id,
                                                        run.stage) for item in run.items}
    for item in run.items:
        entry = entries[item.service_id]
        if item.mode != "artifact" or entry is None:
            continue
        try:
            mirror_for(run.runtime, item).push_release(entry.deployed_commit, item.main_branch,
                                                       f"golive/{run.order_id}")
            run.log(item)(f"pushed {entry.deployed_commit[:12]} to {item.main_branch}, "
                          f"tagged golive/{run.order_id}")
        except GoliveError as exc:
            run.log(item, level="error")(f"the merge was not pushed to {item.main_branch}: "
                                         f"{exc}; push it by hand")


def _deploy(run: DeployRun, plan: planning.Plan) -> None:
    if plan.refused:
        service, stmt, note = plan.refused[0]
        raise DeployError(
            f"SQL {service}:{stmt.position + 1} is refused by the review rule {note.rule}: "
            f"{note.message_en}. Nothing ran; `golive order approve-sql {run.order_id}` "
            "(owner or releaser) lets it through")
    if plan.blocked:
        svc, stmt = plan.blocked[0]
        ref = f"{svc.service}:{stmt.position + 1}"
        raise DeployError(
            f"SQL {ref} is {stmt.status} on database {svc.database}: it may or may not "
            f"have run; resolve it with `golive sql resolve {run.order_id} {ref} "
            "--as executed|retry` before deploying")
    plans = {p.service: p for p in plan.services}
    moving = [i for i in run.items if plans[i.service].action == planning.DEPLOY]
    for item in run.items:
        if plans[item.service].action == planning.UNCHANGED:
            run.log(item)(f"unchanged since the last deploy on {run.stage}: skipped")
    artifacts = {i.service: _prepare(run, i, plans[i.service])
                 for i in moving if i.mode == "artifact"}
    for item in moving:
        if item.mode == "artifact":
            _distribute(run, item, artifacts[item.service])
    for item in run.items:
        _run_sql(run, item)
    try:
        commits: dict[str, str] = {}
        for item in moving:
            if item.mode == "artifact":
                commits[item.service] = artifacts[item.service].merge_commit
                _switch_artifact(run, item, plans[item.service], commits[item.service])
            else:
                commits[item.service] = _switch_checkout(run, item, plans[item.service])
    except BaseException:  # a bug, too, must not leave hosts half switched
        switch_back(run)
        raise
    run.commits = {p.service: p.old_commit for p in plan.services} | commits
    run.moved = {i.service for i in moving if i.mode == "artifact"}
    for item in run.items:
        run_jobs(run, item)
    for item in moving:
        _finish_service(run, item, plans[item.service], commits[item.service])
    if run.is_last_stage and not run.canary:
        _push_merges(run)


def _open_run(runtime: Runtime, deployment_id: int) -> DeployRun:
    with runtime.store.session() as session:
        deployment = session.get(Deployment, deployment_id)
        if deployment is None:
            raise InputError(f"deployment {deployment_id} does not exist")
        deployment.status, deployment.started_at = "running", utcnow()
        deployment.runner = this_runner()
        order = get_order(session, deployment.order_id)
        stages = list(order.project.stages)
        only = tuple(deployment.only_hosts or ())
        items = limit_hosts(load_items(order, deployment.stage, runtime.box, deployment.lane),
                            only)
        started = utcnow()
        run = DeployRun(
            runtime, deployment.id, order.id, order.project.name, deployment.stage,
            deployment.lane, deployment.kind, deployment.requested_by,
            deployment.stage == stages[-1],
            Reporter(runtime.store.sessions, deployment.id, secrets_of(items)),
            release_id(started, deployment.id), items, target_release=deployment.target_release,
            canary=bool(only), pause_after_batch=deployment.pause_after_batch,
            prune_jobs=deployment.prune_jobs,
        )
        session.commit()
    return run


def _plan_for(run: DeployRun) -> planning.Plan:
    with run.runtime.store.session() as session:
        order = get_order(session, run.order_id)
        only = tuple(h.name for item in run.items for h in item.hosts) if run.canary else ()
        return build_plan(run.runtime, session, order, run.stage, run.kind, run.lane, only)


def _end(runtime: Runtime, deployment_id: int, ok: bool, error: str,
         action: str | None, by: str | None) -> None:
    with runtime.store.session() as session:
        deployment = session.get_one(Deployment, deployment_id)
        deployment.status = "succeeded" if ok else "failed"
        deployment.finished_at, deployment.error = utcnow(), error
        if action is not None:
            user = session.scalar(select(User).where(User.name == by)) if by else None
            transition(session, deployment.order_id, action, user, reason=error[:500])
        session.commit()


def run_deployment(runtime: Runtime, deployment_id: int) -> bool:
    """Carry out a deployment record; True if it succeeded. Never raises for a failure."""
    run = _open_run(runtime, deployment_id)
    is_rollback = run.kind == "rollback"
    try:
        run.reporter.log(f"{run.kind} deployment of order {run.order_id} on {run.stage} "
                         f"started by {run.by}")
        if is_rollback:
            rollback_hosts(run, run.target_release)
        else:
            _deploy(run, _plan_for(run))
    except GoliveError as exc:
        discard_release(run)
        run.reporter.log(exc.message, level="error")
        _end(runtime, deployment_id, False, exc.message,
             None if is_rollback or run.canary else Action.FAIL.value, None)
        return False
    except Exception as exc:  # a bug: keep the trace in the log, fail the deployment
        run.reporter.log("internal error:\n" + traceback.format_exc(), level="error")
        _end(runtime, deployment_id, False, f"internal error: {exc}",
             None if is_rollback or run.canary else Action.FAIL.value, None)
        return False
    finally:
        run.close()
    run.reporter.log(f"{run.kind} deployment of order {run.order_id} on {run.stage} succeeded")
    if run.canary:
        _end(runtime, deployment_id, True, "", None, None)
    elif is_rollback:
        _end(runtime, deployment_id, True, "", Action.ROLLBACK.value, run.by)
    else:
        _end(runtime, deployment_id, True, "", Action.SUCCEED.value, None)
    return True


