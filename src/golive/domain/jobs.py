"""Jobs on job hosts (DESIGN §5): what an order's job looks like, the commands that
create or reload it, the crontab block, and the job plan — all pure.

Kinds:
* ``pm2``: ``script``, ``args``, ``interpreter``, ``cwd``; created with
  ``pm2 start ... --name <project>-<service>-<job>``, reloaded with ``pm2 reload``
  (``--update-env``), the process list saved with ``pm2 save``. The working folder
  defaults to ``<path>/current``: it is the new release when jobs run (after the
  switch), and a reload started there picks up every later release.
* ``cron``: ``schedule`` + ``command``: one line per job inside the deploy user's
  crontab block ``# golive:<project>:begin`` … ``# golive:<project>:end``; lines
  outside the block are never touched.
* ``command``: custom ``create`` and ``reload`` commands.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from shlex import quote
from typing import Any

from golive.domain.names import name_problem

KINDS = ("pm2", "cron", "command")
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required fields, optional fields)
    "pm2": (("script",), ("args", "interpreter", "cwd", "env")),
    "cron": (("schedule", "command"), ()),
    "command": (("create", "reload"), ("cwd",)),
}
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")
_CRON_NICKNAMES = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily",
                   "@midnight", "@hourly")
CREATE, RELOAD, RELOAD_CHANGED, ORPHAN = "create", "reload", "reload (definition changed)", \
    "not in this order"


@dataclass(frozen=True)
class JobSpec:
    name: str
    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def checksum(self) -> str:
        """Identity of the definition: a change means "reload with the new definition"."""
        canonical = json.dumps({"kind": self.kind, **dict(self.fields)}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_jobs(data: object, source: str) -> list[JobSpec]:
    """The jobs of a YAML list; ValueError naming ``source``, the item and the field."""
    if not isinstance(data, list):
        raise ValueError(f"{source}: a list of jobs is expected")
    jobs: list[JobSpec] = []
    for index, raw in enumerate(data):
        where = f"{source}: jobs[{index}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: a mapping with name, kind and the kind's fields")
        jobs.append(_parse_job(dict(raw), where))
    names = [j.name for j in jobs]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"{source}: job {name} is defined twice")
    return jobs


def _parse_job(raw: dict[str, Any], where: str) -> JobSpec:
    name, kind = str(raw.pop("name", "")), str(raw.pop("kind", ""))
    if not name or name_problem(name):
        raise ValueError(f"{where}.name: {name_problem(name) or 'missing field'}")
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: {kind or 'missing'}; kinds are {', '.join(KINDS)}")
    required, optional = FIELDS[kind]
    for key in required:
        if not str(raw.get(key, "")).strip():
            raise ValueError(f"{where}.{key}: missing field for a {kind} job")
    for key in raw:
        if key not in required + optional:
            raise ValueError(f"{where}.{key}: unknown field for a {kind} job")
    if kind == "cron":
        _check_schedule(str(raw["schedule"]), where)
        if any(c in str(raw["command"]) for c in "\r\n"):
            raise ValueError(f"{where}.command: a cron command is one line")
    if "env" in raw and not isinstance(raw["env"], dict):
        raise ValueError(f"{where}.env: a mapping of variables")
    return JobSpec(name, kind, raw)


def _check_schedule(schedule: str, where: str) -> None:
    parts = schedule.split()
    one_line = not any(c in schedule for c in "\r\n")
    nickname = len(parts) == 1 and parts[0] in _CRON_NICKNAMES
    fields = len(parts) == 5 and all(_CRON_FIELD.match(p) for p in parts)
    if not one_line or not (nickname or fields):
        raise ValueError(f"{where}.schedule: {schedule!r} is not a cron schedule "
                         "(five fields, e.g. '*/5 * * * *', or @daily)")


def process_name(project: str, service: str, job: str) -> str:
    return f"{project}-{service}-{job}"


# -- pm2 -------------------------------------------------------------------------------


def pm2_ecosystem(spec: JobSpec, name: str, cwd: str) -> str:
    """The pm2 app definition (JSON) of the job: same file for create and reload."""
    f = spec.fields
    app: dict[str, Any] = {"name": name, "script": str(f["script"]),
                           "cwd": str(f.get("cwd") or cwd)}
    if f.get("interpreter"):
        app["interpreter"] = str(f["interpreter"])
    if f.get("args"):
        app["args"] = _args(f["args"])
    if f.get("env"):
        app["env"] = {str(k): str(v) for k, v in dict(f["env"]).items()}
    return json.dumps({"apps": [app]}, sort_keys=True)


def pm2_command(spec: JobSpec, name: str, cwd: str, file: str, *, create: bool) -> str:
    """Write the definition to ``file``, then ``pm2 start`` it (create) or
    ``pm2 startOrReload`` it (reload: one process, restarts +1, the new definition
    applied), and save pm2's process list."""
    verb = "start" if create else "startOrReload"
    return (f"printf '%s' {quote(pm2_ecosystem(spec, name, cwd))} > {quote(file)} && "
            f"pm2 {verb} {quote(file)} --update-env && pm2 save --force")


def pm2_delete(name: str) -> str:
    return f"pm2 delete {quote(name)} && pm2 save --force"


def _args(args: object) -> list[str]:
    if isinstance(args, list):
        return [str(a) for a in args]
    return str(args).split()


# -- cron ------------------------------------------------------------------------------


def cron_markers(project: str) -> tuple[str, str]:
    return f"# golive:{project}:begin", f"# golive:{project}:end"


def cron_line(spec: JobSpec, cwd: str) -> str:
    """One crontab line; ``cwd`` is the deploy path's ``current``. cron reads an unescaped
    ``%`` as a newline (the rest goes to the command's input), so each ``%`` is escaped:
    the command runs as written."""
    command = f"cd {quote(cwd)} && {spec.fields['command']}".replace("%", "\\%")
    return f"{spec.fields['schedule']} {command}"


def render_cron_block(project: str, lines: Mapping[str, str]) -> str:
    """The block: a comment naming each job, then its line; sorted by job key. No lines:
    no block (empty text)."""
    if not lines:
        return ""
    begin, end = cron_markers(project)
    body = [f"# {key}\n{line}" for key, line in sorted(lines.items())]
    return "\n".join([begin, *body, end])


def replace_cron_block(crontab: str, project: str, block: str) -> str:
    """``crontab`` with the project's block replaced where it stands (added at the end if
    there is none, removed if ``block`` is empty); every other line untouched.

    ValueError if a begin marker has no end marker after it: golive cannot tell where
    its block ends, and the lines after it may be the user's.
    """
    begin, end = cron_markers(project)
    kept: list[str] = []
    placed = inside = False
    for line in crontab.split("\n"):
        if inside:
            inside = line.strip() != end
            continue
        if line.strip() == begin:
            inside = True
            if block and not placed:
                kept.append(block)
            placed = True
            continue
        kept.append(line)
    if inside:
        raise ValueError(f"the crontab has the line {begin!r} but no {end!r} after it: fix "
                         "it by hand (crontab -e)")
    if block and not placed:
        while kept and not kept[-1].strip():
            kept.pop()
        kept.append(block)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + "\n" if kept else ""


def install_crontab(text: str) -> str:
    """Shell text that makes ``text`` the user's crontab."""
    return f"printf '%s' {quote(text)} | crontab -"


READ_CRONTAB = "crontab -l 2>/dev/null || true"


# -- the job plan ----------------------------------------------------------------------


@dataclass(frozen=True)
class JobPlan:
    service: str
    host: str
    job: str
    kind: str
    action: str  # create | reload | reload (definition changed) | not in this order


def plan_jobs(service: str, jobs: list[JobSpec], hosts: list[str],
              ledger: Mapping[tuple[str, str], str]) -> list[JobPlan]:
    """Per job host and job: create or reload; ledger jobs the order lacks are reported.

    ``ledger`` maps (host, job) → the definition checksum recorded when it last ran.
    """
    plans: list[JobPlan] = []
    names = {j.name for j in jobs}
    for host in hosts:
        for job in jobs:
            known = ledger.get((host, job.name))
            if known is None:
                action = CREATE
            elif known != job.checksum():
                action = RELOAD_CHANGED
            else:
                action = RELOAD
            plans.append(JobPlan(service, host, job.name, job.kind, action))
        for (ledger_host, name) in sorted(ledger):
            if ledger_host == host and name not in names:
                plans.append(JobPlan(service, host, name, "", ORPHAN))
    return plans
