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
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.adapters.git import Mirror
from golive.adapters.sqltarget import open_target
from golive.adapters.transport import Transport
from golive.domain import plan as planning
from golive.domain.release import release_id
from golive.domain.workflow import Action
from golive.errors import DeployError, GoliveError, InputError
from golive.services import ledger, locks, occupancy, requests, rollout
from golive.services.artifacts import (
    Artifact,
    Deltas,
    estimate_transfer,
    peek_artifact,
    prepare_artifact,
)
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
    get_order,
    service_dialect_by_id,
    transition,
)
from golive.services.progress import Reporter
from golive.services.rollback import rollback_hosts
from golive.services.runtime import Runtime
from golive.services.sqlrun import SqlJob, SqlRun, run_statements
from golive.services.work import HostRef, ItemWork, load_items, secrets_of
from golive.store.models import (
    CommitLedger,
    Deployment,
    DeploymentStep,
    Host,
    Occupancy,
    Order,
    User,
    utcnow,
)


def mirror_for(runtime: Runtime, item: ItemWork) -> Mirror:
    return Mirror.at(runtime.settings.home / "repos", item.repo)


def limit_hosts(items: list[ItemWork], only: tuple[str, ...]) -> list[ItemWork]:
    """The items with their hosts limited to ``only`` (a canary); all hosts when empty."""
    if not only:
        return items
    for item in items:
        item.hosts = [h for h in item.hosts if h.name in only]
    return [item for item in items if item.hosts]


STEP_ORDER = ("build", "receive", "sql", "switch", "checkout", "jobs")


@dataclass(frozen=True)
class Resuming:
    """An interrupted deployment a plan (or run) resumes: its heads and finished steps."""

    deployment_id: int
    pinned: dict[str, dict[str, str]]
    finished_steps: tuple[str, ...] = ()


def resuming(session: Session, order: Order, stage: str) -> Resuming | None:
    """What a deploy of ``order`` on ``stage`` would resume, for its plan."""
    found = requests.interrupted_on(session, order.id, stage)
    if found is None:
        return None
    names = {i.service_id: i.service.name for i in order.items}
    hosts = {h.id: h.name for h in session.scalars(select(Host))}
    done = sorted((STEP_ORDER.index(s.name) if s.name in STEP_ORDER else len(STEP_ORDER),
                    names.get(s.service_id or 0, ""), hosts.get(s.host_id or 0, ""), s.name)
                   for s in found.steps if s.status == "done")
    # pipeline order, not finishing order: hosts receive in parallel
    steps = tuple(f"{name} {service}" + (f"@{host}" if host else "")
                  for _, service, host, name in done)
    return Resuming(found.id, dict(found.pinned or {}), steps)


def build_plan(runtime: Runtime, session: Session, order: Order, stage: str, kind: str,
               lane: str = "", only_hosts: tuple[str, ...] = (),
               resume: Resuming | None = None, *, full_transfer: bool = False,
               estimate_transfer: bool = False) -> planning.Plan:
    """Fetch the mirrors and compute what a deployment would do; touches no host.

    When it resumes an interrupted deployment, the branch and main heads are the ones
    that deployment planned (a release finishes what it started), not today's. With
    ``estimate_transfer`` each artifact service that deploys says what phase one would
    send (``_transfer``; ``full_transfer`` as the deployment would be asked)."""
    inputs = []
    jobs = []
    items = limit_hosts(load_items(order, stage, runtime.box, lane), only_hosts)
    pinned = resume.pinned if resume else {}
    for item in items:
        jobs += plan_item_jobs(session, item, stage)
        mirror = mirror_for(runtime, item)
        heads = pinned.get(item.service, {})
        try:
            mirror.fetch()
            branch_head = heads.get("branch_head") or mirror.resolve(item.branch)
            main_head = heads.get("main_head") or (
                mirror.resolve(item.main_branch) if item.mode == "artifact" else "")
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
    lane_used = next((item.lane for item in items if item.lane), "")
    plan = planning.make_plan(order.id, stage, kind, inputs, jobs, lane=lane_used,
                              resumes=resume.deployment_id if resume else 0,
                              finished_steps=resume.finished_steps if resume else ())
    if not estimate_transfer:
        return plan
    by_name = {item.service: item for item in items}
    return replace(plan, services=tuple(
        replace(svc, transfer=_transfer(runtime, session, by_name[svc.service], svc, stage,
                                        full_transfer))
        if svc.action == planning.DEPLOY and svc.mode == "artifact" else svc
        for svc in plan.services))


def _transfer(runtime: Runtime, session: Session, item: ItemWork, svc: planning.ServicePlan,
              stage: str, full_transfer: bool) -> planning.TransferPlan:
    """The plan's estimate of what phase one sends: the artifact if it is built (an earlier
    stage, an earlier run), the manifest of the release the stage serves (its board)."""
    home = runtime.settings.home
    artifact = peek_artifact(home, mirror_for(runtime, item), svc.main_head, svc.branch_head,
                             build=item.build, folders=item.pack, exclude=item.exclude)
    previous, manifest = _serving(session, item, stage)
    return estimate_transfer(home, artifact, item.shared, len(item.hosts), previous, manifest,
                             full_transfer)


def _serving(session: Session, item: ItemWork, stage: str) -> tuple[str, str]:
    """(release id, manifest SHA-256) the service serves on the stage and lane as golive
    recorded it ("" when unknown): the deployment the board names, or for a rollback the
    release it went back to; its manifest is in that release's build step."""
    board = session.scalar(select(Occupancy).where(
        Occupancy.service_id == item.service_id, Occupancy.stage == stage,
        Occupancy.lane == item.lane))
    if board is None or board.deployment_id is None:
        return "", ""
    deployment = session.get_one(Deployment, board.deployment_id)
    rid = deployment.release_id
    if deployment.kind == "rollback":
        row = session.scalar(select(CommitLedger).where(
            CommitLedger.service_id == item.service_id, CommitLedger.stage == stage,
            CommitLedger.deployed_commit == board.commit,
        ).order_by(CommitLedger.recorded_at.desc()).limit(1))
        rid = row.release_id if row else ""
    if not rid:
        return "", ""
    build = session.scalar(select(DeploymentStep).join(Deployment).where(
        Deployment.release_id == rid, DeploymentStep.service_id == item.service_id,
        DeploymentStep.name == "build", DeploymentStep.status == "done"))
    return rid, str((build.data or {}).get("manifest", "")) if build else ""


def _prepare(run: DeployRun, item: ItemWork, svc_plan: planning.ServicePlan) -> Artifact:
    mirror = mirror_for(run.runtime, item)
    result: list[Artifact] = []
    info: dict[str, Any] = {}

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
        # the manifest of this deployment's release: a later plan finds what a stage serves
        info.update(merge_commit=artifact.merge_commit,
                    manifest=artifact.manifest.sha256 if artifact.manifest else "")
        how = "reused from an earlier stage" if artifact.reused else "built"
        return f"{how}: merge {artifact.merge_commit[:12]}, {artifact.archive.files} file(s)"

    step(run, "build", item, None, body, info)
    return result[0]


def _distribute(run: DeployRun, item: ItemWork, artifact: Artifact) -> None:
    marker = f"{run.rid} {artifact.merge_commit} {artifact.archive.sha256}"
    deltas = None if run.full_transfer else Deltas(run.runtime.settings.home, artifact,
                                                   item.shared)
    why_full = "full transfer asked (--full-transfer)" if run.full_transfer else ""
    received: list[rollout.Received] = []

    def job(host: HostRef) -> Callable[[], None]:
        info: dict[str, Any] = {}

        def body() -> str:
            transport = run.transport(host)
            done = run.finished_before("receive", item, host)
            # a release is complete (marked) only once verified, by delta or archive alike:
            # a resumed run keeps it; an unmarked one is made again from current (still the
            # previous release: nothing is switched before every host received)
            if done is not None and rollout.release_exists(transport, item, run.rid):
                previous = done.get("previous")
                note = "received before the interruption and still complete: kept"
            else:
                got = rollout.distribute(transport, item, run.rid, artifact, marker,
                                         run.log(item, host),
                                         run.log(item, host, level="warning"), deltas,
                                         why_full)
                received.append(got)
                previous = got.previous
                info.update(transfer=got.method, sent=got.sent)
                note = "ready" if got.method == "full" else "ready (delta)"
            run.previous[(item.service_id, host.id)] = info["previous"] = previous
            info["manifest"] = artifact.manifest.sha256 if artifact.manifest else ""
            return f"release {run.rid} {note}; current {previous or 'none'}"

        return lambda: step(run, "receive", item, host, body, info)

    parallel(run, [job(h) for h in item.hosts], item.parallel)
    _log_transfer(run, item, artifact, received)


def _log_transfer(run: DeployRun, item: ItemWork, artifact: Artifact,
                  received: list[rollout.Received]) -> None:
    """One line per service: what phase one sent, and what the archive would have cost."""
    if not received:
        return
    by_delta = sum(1 for r in received if r.method == "delta")
    sent = sum(r.sent for r in received)
    full = sum(artifact.for_host(r.has_zstd).size for r in received)
    run.log(item)(f"phase one sent {planning.human_bytes(sent)} to {len(received)} host(s) "
                  f"({by_delta} by delta, {len(received) - by_delta} full); the archives "
                  f"alone would have been {planning.human_bytes(full)}")


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
                body: Callable[[HostRef, dict[str, Any]], str]) -> None:
    """Run ``body`` on the item's hosts batch by batch (a batch's hosts in parallel),
    recorded as step ``name`` (with the data ``body`` fills), pausing between batches
    when asked to."""
    hosts = {h.name: h for h in item.hosts}

    def job(host: HostRef) -> Callable[[], None]:
        info: dict[str, Any] = {}
        return lambda: step(run, name, item, host, lambda: body(host, info), info)

    for done, batch in enumerate(plan.batches, start=1):
        parallel(run, [job(hosts[host]) for host in batch], item.parallel)
        run.between_batches(item, done, len(plan.batches))


def _after_switch(run: DeployRun, item: ItemWork, transport: Transport, cwd: str,
                  env: dict[str, str], host: HostRef) -> None:
    rollout.run_hooks(transport, item.post_deploy, cwd, env, run.log(item, host))
    rollout.health_check(transport, item, cwd, env, run.log(item, host))


def _switch_artifact(run: DeployRun, item: ItemWork, plan: planning.ServicePlan,
                     commit: str) -> None:
    def body(host: HostRef, _info: dict[str, Any]) -> str:
        transport = run.transport(host)
        previous = run.previous.get((item.service_id, host.id))
        if (run.finished_before("switch", item, host) is not None and rollout.current_release(
                transport, rollout.base_path(transport, item)) == run.rid):
            run.switched.append(Switched(item, host, previous))
            return f"current was switched to {run.rid} before the interruption: kept"
        rollout.switch(transport, item, run.rid)
        run.switched.append(Switched(item, host, previous))
        _after_switch(run, item, transport, rollout.release_dir(transport, item, run.rid),
                      run.env(item, commit, host, previous), host)
        return f"current → {run.rid}"

    _in_batches(run, item, plan, "switch", body)


def _switch_checkout(run: DeployRun, item: ItemWork, plan: planning.ServicePlan) -> str:
    heads: list[str] = []

    def body(host: HostRef, info: dict[str, Any]) -> str:
        transport = run.transport(host)
        done = run.finished_before("checkout", item, host)
        if done is not None and rollout.head_of(transport, item) == done.get("head"):
            run.switched.append(Switched(item, host, done.get("before") or None,
                                         checkout_mode=True))
            heads.append(done["head"])
            info.update(done)
            return f"{item.branch} was checked out before the interruption: kept"
        before, head = rollout.checkout(transport, item, run.log(item, host))
        info.update(before=before, head=head)
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
        occupancy.record(session, service_id=item.service_id, stage=run.stage, lane=item.lane,
                         order_id=run.order_id, branch=item.branch, commit=commit,
                         deployment_id=run.deployment_id)
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
        mirror = mirror_for(run.runtime, item)
        try:
            mirror.push_release(entry.deployed_commit, item.main_branch, f"golive/{run.order_id}")
        except GoliveError as exc:
            run.log(item, level="error")(f"the merge was not pushed to {item.main_branch}: "
                                         f"{exc}; push it by hand")
            continue
        run.log(item)(f"pushed {entry.deployed_commit[:12]} to {item.main_branch}, "
                      f"tagged golive/{run.order_id}")
        with run.runtime.store.session() as session:
            occupancy.record_main_move(session, item.service_id, entry.deployed_commit,
                                       run.order_id)
            session.commit()
        if run.delete_branch and item.branch != item.main_branch:
            _delete_branch(run, item, mirror)


def _delete_branch(run: DeployRun, item: ItemWork, mirror: Mirror) -> None:
    """delete_branch_after_release: the order's branch goes from the remote once merged."""
    try:
        gone = mirror.delete_remote_branch(item.branch)
    except GoliveError as exc:
        run.log(item, level="warning")(f"branch {item.branch} was not deleted: {exc}")
        return
    run.log(item)(f"branch {item.branch} deleted on the remote" if gone
                  else f"branch {item.branch} was already deleted on the remote")


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
        deployment.status, deployment.runner = "running", this_runner()
        deployment.started_at = deployment.started_at or utcnow()
        # fixed on the first run: a resumed run finishes the same release on every host
        deployment.release_id = deployment.release_id or release_id(utcnow(), deployment.id)
        order = get_order(session, deployment.order_id)
        stages = list(order.project.stages)
        only = tuple(deployment.only_hosts or ())
        items = limit_hosts(load_items(order, deployment.stage, runtime.box, deployment.lane),
                            only)
        run = DeployRun(
            runtime, deployment.id, order.id, order.project.name, deployment.stage,
            deployment.lane, deployment.kind, deployment.requested_by,
            deployment.stage == stages[-1],
            Reporter(runtime.store.sessions, deployment.id, secrets_of(items)),
            deployment.release_id, items, target_release=deployment.target_release,
            canary=bool(only), pause_after_batch=deployment.pause_after_batch,
            prune_jobs=deployment.prune_jobs,
            delete_branch=order.project.delete_branch_after_release,
            full_transfer=deployment.full_transfer,
            pinned=dict(deployment.pinned or {}),
            finished={(s.name, s.service_id, s.host_id): dict(s.data or {})
                      for s in deployment.steps if s.status == "done"},
        )
        session.commit()
    return run


def _plan_for(run: DeployRun) -> planning.Plan:
    """The deployment's plan; its first run pins the heads it planned, so that a resumed
    run deploys the same commits."""
    with run.runtime.store.session() as session:
        order = get_order(session, run.order_id)
        only = tuple(h.name for item in run.items for h in item.hosts) if run.canary else ()
        resume = Resuming(run.deployment_id, run.pinned) if run.pinned else None
        plan = build_plan(run.runtime, session, order, run.stage, run.kind, run.lane, only,
                          resume)
        if not run.pinned:
            run.pinned = {p.service: {"branch_head": p.branch_head, "main_head": p.main_head}
                          for p in plan.services}
            session.get_one(Deployment, run.deployment_id).pinned = run.pinned
            session.commit()
        elif run.finished:
            run.reporter.log(f"resuming: {len(run.finished)} step(s) finished before the "
                             "interruption are checked on the hosts, not done again")
        return plan


def _end(runtime: Runtime, deployment_id: int, ok: bool, error: str,
         action: str | None, by: str | None) -> None:
    with runtime.store.session() as session:
        deployment = session.get_one(Deployment, deployment_id)
        deployment.status = "succeeded" if ok else "failed"
        deployment.finished_at, deployment.error = utcnow(), error
        locks.release(session, deployment_id)
        if action is not None:
            user = session.scalar(select(User).where(User.name == by)) if by else None
            transition(session, deployment.order_id, action, user, reason=error[:500])
        session.commit()


def run_deployment(runtime: Runtime, deployment_id: int) -> bool:
    """Carry out a deployment record; True if it succeeded. Never raises for a failure."""
    run = _open_run(runtime, deployment_id)
    with locks.heartbeat(runtime.store.sessions, deployment_id, this_runner()):
        return _carry_out(runtime, run)


def _carry_out(runtime: Runtime, run: DeployRun) -> bool:
    deployment_id = run.deployment_id
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
        _end(runtime, deployment_id, False, run.reporter.mask(exc.message),
             None if is_rollback or run.canary else Action.FAIL.value, None)
        return False
    except Exception as exc:  # a bug: keep the trace in the log, fail the deployment
        run.reporter.log("internal error:\n" + traceback.format_exc(), level="error")
        _end(runtime, deployment_id, False, run.reporter.mask(f"internal error: {exc}"),
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


