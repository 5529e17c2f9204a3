"""Jobs after the switch (DESIGN §3 step 7, §5): created once per (stage, host, job),
reloaded by every later deploy, recorded in the job ledger.

A failed job command fails the deployment, naming the host and the job; the code
switch stays in place (the message says so). The crontab block of a project on a
host is rendered from every cron job the ledger knows there, so jobs of other
services and orders keep their lines.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from golive.adapters.transport import Transport
from golive.domain import jobs as jobrules
from golive.errors import DeployError, GoliveError
from golive.services import rollout
from golive.services.deployrun import DeployRun, parallel, step
from golive.services.work import HostRef, ItemWork
from golive.store.models import Host, JobLedger, Project, Service, utcnow

Log = Callable[[str], None]


def ledger_of(session: Session, service_id: int, stage: str) -> dict[tuple[str, str], str]:
    """(host name, job name) → the definition checksum the job last ran with."""
    rows = session.execute(
        select(Host.name, JobLedger.job_name, JobLedger.definition_checksum)
        .join(Host, Host.id == JobLedger.host_id)
        .where(JobLedger.service_id == service_id, JobLedger.stage == stage))
    return {(host, job): checksum for host, job, checksum in rows}


def plan_item_jobs(session: Session, item: ItemWork, stage: str) -> list[jobrules.JobPlan]:
    if not item.job_hosts:
        return []
    ledger = ledger_of(session, item.service_id, stage)
    return jobrules.plan_jobs(item.service, item.jobs, [h.name for h in item.job_hosts],
                              ledger)


def _workdir(transport: Transport, item: ItemWork) -> str:
    base = rollout.base_path(transport, item)
    return posixpath.join(base, "current") if item.mode == "artifact" else base


def _record(run: DeployRun, item: ItemWork, host: HostRef, job: jobrules.JobSpec,
            line: str = "") -> None:
    """Created the first time, reloaded after; ``line`` is a cron job's crontab line."""
    with run.runtime.store.session() as session:
        row = session.scalar(select(JobLedger).where(
            JobLedger.service_id == item.service_id, JobLedger.stage == run.stage,
            JobLedger.host_id == host.id, JobLedger.job_name == job.name))
        if row is None:
            row = JobLedger(service_id=item.service_id, stage=run.stage, host_id=host.id,
                            job_name=job.name, created_by_order_id=run.order_id)
            session.add(row)
        else:
            row.reloaded_at = utcnow()
        row.kind, row.definition_checksum = job.kind, job.checksum()
        row.spec = {**dict(job.fields), **({CRON_LINE: line} if line else {})}
        session.commit()


CRON_LINE = "_crontab_line"
"""Key in a cron job's ledger spec: the line as rendered, to keep it when others change."""


def _run_job(run: DeployRun, item: ItemWork, host: HostRef, transport: Transport,
             job: jobrules.JobSpec, action: str, log: Log) -> None:
    cwd = _workdir(transport, item)
    create = action == jobrules.CREATE
    env = run.env(item, run.commits.get(item.service, ""), host)
    if item.mode == "artifact" and item.service not in run.moved:
        # unchanged or rolled back: the release the host serves now, not this run's id
        serving = rollout.current_release(transport, rollout.base_path(transport, item))
        env["GOLIVE_RELEASE"] = serving or ""
        env["GOLIVE_RELEASE_PATH"] = rollout.release_dir(transport, item, serving) \
            if serving else ""
    if job.kind == "pm2":
        name = jobrules.process_name(run.project, item.service, job.name)
        file = posixpath.join(rollout.base_path(transport, item), f".golive-pm2-{job.name}.json")
        transport.run(jobrules.pm2_command(job, name, cwd, file, create=create), env=env,
                      on_line=log)
    elif job.kind == "command":
        command = str(job.fields["create" if create else "reload"])
        workdir = str(job.fields.get("cwd") or cwd)
        transport.run(command, cwd=workdir, env=env, on_line=log)
    log(f"job {job.name} ({job.kind}): {action}")


def _update_crontab(run: DeployRun, item: ItemWork, host: HostRef, transport: Transport,
                    cron_jobs: list[jobrules.JobSpec], log: Log) -> dict[str, str]:
    """Render the project's block on this host: this item's cron jobs, plus the lines the
    ledger keeps for the project's other cron jobs there. Job name → its line."""
    mine = {job.name: jobrules.cron_line(job, _workdir(transport, item)) for job in cron_jobs}
    # keyed by stage too: a host can be a job host of several stages of the project
    lines = {f"{run.stage}/{item.service}/{name}": line for name, line in mine.items()}
    with run.runtime.store.session() as session:
        known = session.execute(
            select(Service.name, JobLedger.stage, JobLedger.job_name, JobLedger.spec)
            .join(Service, Service.id == JobLedger.service_id).join(Project)
            .where(Project.name == run.project, JobLedger.host_id == host.id,
                   JobLedger.kind == "cron")).all()
    for service, stage, name, spec in known:
        mine_now = service == item.service and stage == run.stage and name in mine
        if not mine_now and spec.get(CRON_LINE):
            lines.setdefault(f"{stage}/{service}/{name}", str(spec[CRON_LINE]))
    current: list[str] = []  # every line: a command's output keeps only its last lines
    transport.run(jobrules.READ_CRONTAB, on_line=current.append)
    try:
        text = jobrules.replace_cron_block("\n".join(current) + "\n", run.project,
                                           jobrules.render_cron_block(run.project, lines))
    except ValueError as exc:
        raise DeployError(str(exc), host=host.name) from None
    transport.run(jobrules.install_crontab(text))
    log(f"crontab block golive:{run.project}: {len(lines)} line(s)")
    return mine


def _prune(run: DeployRun, item: ItemWork, host: HostRef, transport: Transport,
           log: Log) -> bool:
    """Remove jobs the ledger has here that the order no longer lists; True if a cron
    job went (the crontab block must be rendered again)."""
    wanted = {j.name for j in item.jobs}
    with run.runtime.store.session() as session:
        orphans = list(session.scalars(select(JobLedger).where(
            JobLedger.service_id == item.service_id, JobLedger.stage == run.stage,
            JobLedger.host_id == host.id, JobLedger.job_name.not_in(wanted))))
        session.expunge_all()
    cron_gone = False
    for row in orphans:
        if row.kind == "pm2":
            name = jobrules.process_name(run.project, item.service, row.job_name)
            transport.run(jobrules.pm2_delete(name), on_line=log)
        elif row.kind == "command":
            log(f"job {row.job_name} (command) has no remove command: stop it by hand")
        cron_gone = cron_gone or row.kind == "cron"
        with run.runtime.store.session() as session:
            session.execute(delete(JobLedger).where(JobLedger.id == row.id))
            session.commit()
        log(f"job {row.job_name} ({row.kind}): removed (--prune-jobs)")
    return cron_gone


def _jobs_on_host(run: DeployRun, item: ItemWork, host: HostRef,
                  ledger: dict[tuple[str, str], str]) -> str:
    transport = run.transport(host)
    log = run.log(item, host)
    cron_gone = _prune(run, item, host, transport, log) if run.prune_jobs else False
    cron = [j for j in item.jobs if j.kind == "cron"]
    for job in item.jobs:
        if job.kind == "cron":
            continue
        try:
            _run_job(run, item, host, transport, job, _action(ledger, host, job), log)
        except GoliveError as exc:
            raise _job_failed(host, job.name, exc) from None
        _record(run, item, host, job)
    if cron or cron_gone:
        try:
            lines = _update_crontab(run, item, host, transport, cron, log)
        except GoliveError as exc:
            raise _job_failed(host, ", ".join(j.name for j in cron) or "cron", exc) from None
        for job in cron:
            log(f"job {job.name} (cron): {_action(ledger, host, job)}")
            _record(run, item, host, job, lines[job.name])
    return f"{len(item.jobs)} job(s) created or reloaded"


def _job_failed(host: HostRef, job: str, exc: GoliveError) -> DeployError:
    return DeployError(f"job {job} on host {host.name} failed: {exc.message}; the code switch "
                       "stays in place", host=host.name)


def run_jobs(run: DeployRun, item: ItemWork) -> None:
    """Create or reload the item's jobs on each of its job hosts (after the switch)."""
    if not item.job_hosts or not (item.jobs or run.prune_jobs):
        return
    if run.canary:
        run.log(item)("canary: jobs are not touched")
        return
    with run.runtime.store.session() as session:
        ledger = ledger_of(session, item.service_id, run.stage)

    def on(host: HostRef) -> Callable[[], None]:
        def body() -> str:
            if run.finished_before("jobs", item, host) is not None:
                return "jobs were created or reloaded before the interruption: not again"
            return _jobs_on_host(run, item, host, ledger)

        return lambda: step(run, "jobs", item, host, body)

    parallel(run, [on(host) for host in item.job_hosts], item.parallel)


def _action(ledger: dict[tuple[str, str], str], host: HostRef, job: jobrules.JobSpec) -> str:
    known = ledger.get((host.name, job.name))
    if known is None:
        return jobrules.CREATE
    return jobrules.RELOAD if known == job.checksum() else jobrules.RELOAD_CHANGED
