"""Jobs on real job hosts (DESIGN §5) over the real OpenSSH test server: a real pm2
(created once, reloaded by every later deploy: restarts +1, never a second process), a
real crontab (golive's block created once, updated in place, the user's own lines
untouched, a job the order dropped removed only with --prune-jobs), custom commands, and
a failed job command after the switch.

Host ``h1`` serves the service, ``j1`` is only its job host; each is a unix user of the
test server with its home (``~/.pm2``, the deploy path) on the server's tmpfs. Every
test kills the pm2 daemons and removes the crontabs of its users at teardown.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from golive.cli.main import main
from golive.domain.jobs import JobSpec
from golive.services import deploy as engine
from golive.services import requests, users
from golive.services.orders import ItemRequest, get_order, set_jobs
from golive.services.runtime import Runtime
from golive.store.models import Deployment, JobLedger
from golive.testing.sshd import SshServer, SshUser, live_processes
from golive.testing.world import act, apply_config, commit, file_order, make_repo, roll_back, rows
from golive.testing.world import deploy as deploy_as

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ssh"))
from ssh_world import BRANCH, BUILD, MEMBERS, World, ssh_host, wait_until  # noqa: E402

# The job script: writes where it runs from (the release), its pid, its code's version and
# its arguments to ~/worker.out, again and again.
WORKER = """\
import os, sys, time
VERSION = "v1"
out = os.path.expanduser("~/worker.out")
while True:
    words = [os.path.realpath(os.getcwd()), str(os.getpid()), VERSION, *sys.argv[1:]]
    with open(out + ".tmp", "w") as f:
        f.write(" ".join(words) + "\\n")
    os.replace(out + ".tmp", out)
    time.sleep(0.1)
"""
PROCESS = "shop-web-worker"  # <project>-<service>-<job>
WORKER_JOB = JobSpec("worker", "pm2", {"script": "worker.py", "interpreter": "python3"})
CLEANUP = JobSpec("cleanup", "cron", {"schedule": "*/5 * * * *", "command": "echo hi"})
MAIL = JobSpec("mail", "command", {
    "create": 'echo "created $GOLIVE_HOST $GOLIVE_STAGE $(pwd -P)" >> ~/log',
    "reload": 'echo "reloaded $GOLIVE_HOST $GOLIVE_STAGE $(pwd -P)" >> ~/log'})
BEGIN, END = "# golive:shop:begin", "# golive:shop:end"


# -- the world: h1 serves, j1 runs the jobs -----------------------------------------------


@pytest.fixture
def world(tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer) -> Iterator[World]:
    repo = make_repo(tmp_path, "web", {"src/index.html": "<h1>shop</h1>\n", "worker.py": WORKER},
                     branches={BRANCH: {"src/feature.html": "<p>new</p>\n"}})
    made = World(tmp_path, sqlite_runtime, repo, {"h1": sshd.users[0], "j1": sshd.users[1]},
                 [ssh_host(sshd, 0), ssh_host(sshd, 1, "j1")],
                 {"hosts": ["h1"], "job_hosts": ["j1"]}, {"pack": ["dist", "worker.py"]})
    made.apply()
    try:
        yield made
    finally:
        for user in sshd.users:
            if (user.home / ".pm2").exists():
                ssh(sshd, user, "pm2 kill", check=False)
            subprocess.run(["crontab", "-u", user.name, "-r"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        for user in sshd.users:
            wait_until(lambda u=user: not pm2_processes(u), 20, f"pm2 of {user.name} to stop")


def ssh(server: SshServer, user: SshUser, command: str, *, stdin: str | None = None,
        check: bool = True) -> str:
    """Run ``command`` as ``user`` over SSH (the login shell, like golive's commands)."""
    done = subprocess.run([*server.ssh_args(user), command], input=stdin, capture_output=True,
                          text=True, timeout=120,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"{command} as {user.name}: {done.returncode}\n{done.stderr}")
    return done.stdout


def pm2_processes(user: SshUser) -> list[int]:
    """Live pm2 daemons and workers of ``user``."""
    return [p.pid for p in live_processes() if p.uids and p.uids[0] == user.uid
            and (b"PM2" in p.cmdline or b"worker.py" in p.cmdline)]


def jlist(server: SshServer, user: SshUser) -> list[dict[str, Any]]:
    """``pm2 jlist`` as the host user."""
    out = ssh(server, user, "pm2 jlist")
    line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("["))
    return list(json.loads(line))


def the_process(server: SshServer, user: SshUser) -> dict[str, Any]:
    processes = jlist(server, user)
    assert [p["name"] for p in processes] == [PROCESS], processes
    return processes[0]


def worker_says(user: SshUser) -> list[str]:
    out = user.home / "worker.out"
    return out.read_text().split() if out.exists() else []


def wait_for_worker(user: SshUser, release: Path, *words: str) -> list[str]:
    """Until the worker writes that it runs from ``release`` with ``words`` after its pid."""
    def ok() -> bool:
        said = worker_says(user)
        return bool(said) and said[0] == str(release) and said[2:] == list(words)
    wait_until(ok, 30, f"the worker to run from {release} with {words}: {worker_says(user)}")
    return worker_says(user)


def crontab(user: SshUser) -> str:
    done = subprocess.run(["crontab", "-u", user.name, "-l"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)
    return done.stdout if done.returncode == 0 else ""


def block(*lines: str) -> str:
    return "\n".join([BEGIN, *lines, END]) + "\n"


# -- the store and the engine -------------------------------------------------------------


def order(world: World, jobs: list[JobSpec]) -> int:
    world.order_id = file_order(world.runtime, "alice", "shop",
                                [ItemRequest("web", BRANCH, jobs=tuple(jobs))])
    return world.order_id


def change_jobs(world: World, jobs: list[JobSpec]) -> None:
    with world.runtime.store.session() as session:
        set_jobs(session, world.order_id, "web", jobs, users.acting_user(session, "alice"))
        session.commit()


def plan(world: World, kind: str = "iterative") -> list[tuple[str, str, str, str]]:
    with world.runtime.store.session() as session:
        result = engine.build_plan(world.runtime, session, get_order(session, world.order_id),
                                   "test", kind)
    return [(j.host, j.job, j.kind, j.action) for j in result.jobs]


def deploy(world: World, *, kind: str = "iterative", prune: bool = False,
           ok: bool = True) -> Deployment:
    with world.runtime.store.session() as session:
        deployment_id = requests.request_deployment(
            session, world.order_id, users.acting_user(session, "alice"), stage="test",
            kind=kind, prune_jobs=prune).id
        session.commit()
    engine.run_deployment(world.runtime, deployment_id)
    row = world.deployment(deployment_id)
    assert (row.status == "succeeded") == ok, f"{row.error}\n{world.log(deployment_id)}"
    return row


def release_of(deployment: Deployment) -> str:
    return f"-d{deployment.id}"


def serving(world: World, deployment: Deployment) -> str:
    """The release both hosts serve, checked to be ``deployment``'s."""
    rid = world.current("j1")
    assert rid is not None and rid.endswith(release_of(deployment)), rid
    world.assert_serving({"h1": rid, "j1": rid})
    return rid


def ledger(world: World) -> list[JobLedger]:
    return rows(world.runtime, JobLedger)


# -- pm2 ------------------------------------------------------------------------------------


def test_pm2_job_created_once_then_reloaded_by_every_deploy(
    world: World, sshd: SshServer, capsys: pytest.CaptureFixture[str]
) -> None:
    j1, h1 = world.hosts["j1"], world.hosts["h1"]
    current = world.base("j1") / "current"
    order(world, [WORKER_JOB])
    assert plan(world) == [("j1", "worker", "pm2", "create")]

    first = deploy(world)
    rid1 = serving(world, first)  # j1, only a job host, received the release too
    proc = the_process(sshd, j1)
    assert proc["pm2_env"]["restart_time"] == 0 and proc["pm2_env"]["status"] == "online"
    assert proc["pm2_env"]["pm_cwd"] == str(current)  # follows every later release
    assert proc["pm2_env"]["pm_exec_path"] == str(current / "worker.py")
    said = wait_for_worker(j1, world.base("j1") / "releases" / rid1, "v1")
    assert not (h1.home / ".pm2").exists()  # jobs run on job hosts only
    (row,) = ledger(world)
    assert (row.job_name, row.kind, world.host_name(row.host_id), row.stage) == \
        ("worker", "pm2", "j1", "test")
    assert row.created_by_order_id == world.order_id and row.reloaded_at is None
    assert row.definition_checksum == WORKER_JOB.checksum()
    assert "job worker (pm2): create" in world.log(first.id)

    # a new commit, an iterative deploy: reloaded (restarts +1) with the new code
    assert plan(world) == [("j1", "worker", "pm2", "reload")]
    commit(world.repo, BRANCH, {"worker.py": WORKER.replace('"v1"', '"v2"')})
    second = deploy(world)
    rid2 = serving(world, second)
    again = the_process(sshd, j1)
    assert again["pm_id"] == proc["pm_id"] and again["pm2_env"]["restart_time"] == 1
    now = wait_for_worker(j1, world.base("j1") / "releases" / rid2, "v2")
    assert now[1] != said[1]  # a new process
    (reloaded,) = ledger(world)
    assert reloaded.id == row.id and reloaded.created_at == row.created_at
    assert reloaded.reloaded_at is not None
    assert "job worker (pm2): reload" in world.log(second.id)

    # a full deploy of the same heads: reloaded again
    assert plan(world, "full") == [("j1", "worker", "pm2", "reload")]
    third = deploy(world, kind="full")
    rid3 = serving(world, third)
    assert the_process(sshd, j1)["pm2_env"]["restart_time"] == 2
    wait_for_worker(j1, world.base("j1") / "releases" / rid3, "v2")
    assert len(ledger(world)) == 1

    # the definition changes (`order job add`): reloaded with it, not created again
    jobs_file = world.root / "jobs.yaml"
    jobs_file.write_text("- {name: worker, kind: pm2, script: worker.py, interpreter: python3,"
                         " args: ['--fast', 'two words']}\n")
    assert main(["--as", "alice", "order", "job", "add", str(world.order_id), "-s", "web",
                 "-f", str(jobs_file)]) == 0, capsys.readouterr().err
    assert plan(world) == [("j1", "worker", "pm2", "reload (definition changed)")]
    fourth = deploy(world)  # the code is unchanged (no new release), the job reloads
    assert world.current("j1") == rid3 and "unchanged" in world.log(fourth.id)
    changed = the_process(sshd, j1)
    assert changed["pm2_env"]["restart_time"] == 3
    assert changed["pm2_env"]["args"] == ["--fast", "two words"]
    wait_for_worker(j1, world.base("j1") / "releases" / rid3, "v2", "--fast", "two", "words")
    (row4,) = ledger(world)
    assert row4.id == row.id and row4.created_at == row.created_at
    assert row4.spec["args"] == ["--fast", "two words"]
    assert "job worker (pm2): reload (definition changed)" in world.log(fourth.id)
    assert plan(world) == [("j1", "worker", "pm2", "reload")]

    # pm2's process list is saved: a rebooted host brings the job back
    dump = json.loads((j1.home / ".pm2" / "dump.pm2").read_text())
    assert [(p["name"], p["args"]) for p in dump] == [(PROCESS, ["--fast", "two words"])]

    # a rollback reloads the job from the release now current
    rollback_id, ok = roll_back(world.runtime, world.order_id, "rita", stage="test")
    assert ok, world.log(rollback_id)
    world.assert_serving({"h1": rid2, "j1": rid2})
    assert the_process(sshd, j1)["pm2_env"]["restart_time"] == 4
    wait_for_worker(j1, world.base("j1") / "releases" / rid2, "v2", "--fast", "two", "words")
    assert "job worker (pm2): reload" in world.log(rollback_id)
    assert len(ledger(world)) == 1


def test_prune_jobs_deletes_a_pm2_process_the_order_dropped(
    world: World, sshd: SshServer
) -> None:
    j1 = world.hosts["j1"]
    order(world, [WORKER_JOB])
    deploy(world)
    assert the_process(sshd, j1)["pm2_env"]["status"] == "online"
    order(world, [MAIL])  # a later order without the worker
    assert plan(world) == [("j1", "mail", "command", "create"),
                           ("j1", "worker", "", "not in this order")]
    deploy(world)
    the_process(sshd, j1)  # still there: only --prune-jobs removes it
    assert plan(world) == [("j1", "mail", "command", "reload"),
                           ("j1", "worker", "", "not in this order")]
    deploy(world, prune=True)
    assert jlist(sshd, j1) == []
    assert json.loads((j1.home / ".pm2" / "dump.pm2").read_text()) == []
    assert [r.job_name for r in ledger(world)] == ["mail"]
    assert plan(world) == [("j1", "mail", "command", "reload")]


# -- cron -------------------------------------------------------------------------------


def test_cron_block_created_once_updated_in_place_pruned_on_request(
    world: World, sshd: SshServer
) -> None:
    j1 = world.hosts["j1"]
    # the user's own crontab, longer than the tail of output a command keeps
    own = "# mine\n0 1 * * * echo mine\n" + "".join(
        f"# note {i}\n{i} 3 * * * echo mine-{i}\n" for i in range(20))
    ssh(sshd, j1, "crontab -", stdin=own)
    assert crontab(j1) == own
    where = f"cd {world.base('j1')}/current"
    order(world, [CLEANUP])
    assert plan(world) == [("j1", "cleanup", "cron", "create")]

    deploy(world)
    line = f"*/5 * * * * {where} && echo hi"
    assert crontab(j1) == own + block("# test/web/cleanup", line)

    # the user adds lines after golive's block: they stay after it
    later = "# later\n30 2 * * * echo later\n"
    ssh(sshd, j1, "(crontab -l; cat) | crontab -", stdin=later)
    assert crontab(j1) == own + block("# test/web/cleanup", line) + later

    assert plan(world) == [("j1", "cleanup", "cron", "reload")]
    world.change()
    deploy(world)
    assert crontab(j1) == own + block("# test/web/cleanup", line) + later  # once, unchanged

    # a changed schedule: the line is rendered again, in place
    change_jobs(world, [JobSpec("cleanup", "cron", {**CLEANUP.fields,
                                                    "schedule": "*/10 * * * *"})])
    assert plan(world) == [("j1", "cleanup", "cron", "reload (definition changed)")]
    deploy(world)
    line = f"*/10 * * * * {where} && echo hi"
    assert crontab(j1) == own + block("# test/web/cleanup", line) + later
    (row,) = ledger(world)
    assert row.reloaded_at is not None and row.spec["schedule"] == "*/10 * * * *"

    # a later order without it: reported, and kept (another cron job of the order is added)
    report = JobSpec("report", "cron", {"schedule": "@daily", "command": "date +%F > day"})
    order(world, [report])
    assert plan(world) == [("j1", "report", "cron", "create"),
                           ("j1", "cleanup", "", "not in this order")]
    deploy(world)
    report_line = f"@daily {where} && date +\\%F > day"
    assert crontab(j1) == own + block("# test/web/cleanup", line, "# test/web/report",
                                      report_line) + later
    assert plan(world) == [("j1", "report", "cron", "reload"),
                           ("j1", "cleanup", "", "not in this order")]

    # --prune-jobs removes it; the user's lines are still untouched
    deploy(world, prune=True)
    assert crontab(j1) == own + block("# test/web/report", report_line) + later
    assert [r.job_name for r in ledger(world)] == ["report"]
    assert plan(world) == [("j1", "report", "cron", "reload")]

    # an order with no jobs, pruning: the empty block goes away entirely
    order(world, [])
    assert plan(world) == [("j1", "report", "", "not in this order")]
    deploy(world, prune=True)
    assert crontab(j1) == own + later
    assert ledger(world) == []


def test_one_job_host_for_two_stages_keeps_both_lines(world: World, sshd: SshServer) -> None:
    """The block is the project's: the same job on the test and the prod stage of one job
    host has a line for each, and deploying one stage keeps the other's."""
    j1 = world.hosts["j1"]
    stage = {"hosts": ["h1"], "job_hosts": ["j1"]}
    apply_config(world.runtime, world.config_path, {
        "hosts": world.host_entries,
        "projects": [{"name": "shop", "stages": ["test", "prod"], "members": MEMBERS,
                      "services": [{"name": "web", "repo": world.repo.url, "build": BUILD,
                                    "pack": ["dist"],
                                    "stages": {"test": {**stage, "path": "app"},
                                               "prod": {**stage, "path": "app-prod"}}}]}]})
    order(world, [CLEANUP])
    deploy(world)
    assert act(world.runtime, world.order_id, "pass", "tom") == "test:passed"
    released, ok = deploy_as(world.runtime, world.order_id, "rita", action="release")
    assert ok, world.log(released)
    assert crontab(j1) == block(
        "# prod/web/cleanup", f"*/5 * * * * cd {world.base('j1', 'app-prod')}/current && echo hi",
        "# test/web/cleanup", f"*/5 * * * * cd {world.base('j1')}/current && echo hi")
    assert sorted((r.stage, r.job_name) for r in ledger(world)) == [
        ("prod", "cleanup"), ("test", "cleanup")]


def test_a_broken_block_fails_the_jobs_and_keeps_the_users_lines(
    world: World, sshd: SshServer
) -> None:
    """A begin marker left without its end (an edit by hand): golive refuses to guess
    where its block ends rather than drop the user's lines after it."""
    j1 = world.hosts["j1"]
    broken = f"# mine\n{BEGIN}\n*/5 * * * * echo old\n0 1 * * * echo mine\n"
    ssh(sshd, j1, "crontab -", stdin=broken)
    order(world, [CLEANUP])
    failed = deploy(world, ok=False)
    assert "job cleanup on host j1 failed" in failed.error
    assert f"'{BEGIN}' but no '{END}'" in failed.error
    assert crontab(j1) == broken
    assert ledger(world) == []


# -- custom commands, a failing job -----------------------------------------------------------


def test_command_job_created_once_then_reloaded(world: World, sshd: SshServer) -> None:
    j1 = world.hosts["j1"]
    order(world, [MAIL])
    first = deploy(world)
    rid1 = serving(world, first)
    releases = world.base("j1") / "releases"
    assert (j1.home / "log").read_text() == f"created j1 test {releases / rid1}\n"
    world.change()
    second = deploy(world)
    rid2 = serving(world, second)
    third = deploy(world, kind="full")
    rid3 = serving(world, third)
    assert (j1.home / "log").read_text().splitlines() == [
        f"created j1 test {releases / rid1}", f"reloaded j1 test {releases / rid2}",
        f"reloaded j1 test {releases / rid3}"]
    assert not (world.hosts["h1"].home / "log").exists()
    (row,) = ledger(world)
    assert row.job_name == "mail" and row.reloaded_at is not None


def test_a_failing_job_fails_the_deployment_after_the_switch(
    world: World, sshd: SshServer
) -> None:
    j1 = world.hosts["j1"]
    order(world, [MAIL])
    rid1 = serving(world, deploy(world))

    broken = JobSpec("sender", "command", {"create": "echo trying >> ~/log; exit 3",
                                           "reload": "echo reloaded-sender >> ~/log"})
    change_jobs(world, [broken])
    world.change()
    failed = deploy(world, ok=False)
    assert "job sender on host j1 failed" in failed.error
    assert "exited with 3" in failed.error
    assert "the code switch stays in place" in failed.error
    assert world.state() == "test:failed"
    rid2 = serving(world, failed)  # the new release, on both hosts: not switched back
    assert rid2 != rid1
    assert [r.job_name for r in ledger(world)] == ["mail"]  # the failed one is not recorded
    assert (j1.home / "log").read_text().splitlines()[1:] == [
        f"reloaded j1 test {world.base('j1') / 'releases' / rid2}", "trying"]

    # fixed, run again: created now
    change_jobs(world, [JobSpec("sender", "command", {"create": "echo created-sender >> ~/log",
                                                      "reload": broken.fields["reload"]})])
    assert plan(world) == [("j1", "mail", "command", "reload"),
                           ("j1", "sender", "command", "create")]
    fixed = deploy(world)
    serving(world, fixed)
    assert world.state() == "test:deployed"
    assert (j1.home / "log").read_text().splitlines()[-1] == "created-sender"
    assert sorted(r.job_name for r in ledger(world)) == ["mail", "sender"]
    deploy(world)
    assert (j1.home / "log").read_text().splitlines()[-1] == "reloaded-sender"
    assert (j1.home / "log").read_text().count("created-sender") == 1
