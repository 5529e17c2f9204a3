"""The job rules as data (DESIGN §5): parsing an order's job list, the job plan (create,
reload, reload with a changed definition, not in this order), the crontab block and the
pm2 definition — and that hostile text stays text in the shell commands built from them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from golive.domain import jobs as rules
from golive.domain.jobs import JobPlan, JobSpec, parse_jobs, plan_jobs

SOURCE = "jobs.yaml"
PM2 = {"name": "worker", "kind": "pm2", "script": "worker.py"}
CRON = {"name": "cleanup", "kind": "cron", "schedule": "*/5 * * * *", "command": "echo hi"}
COMMAND = {"name": "mail", "kind": "command", "create": "make up", "reload": "make reload"}

# -- parsing -------------------------------------------------------------------------

VALID: list[tuple[str, object, list[JobSpec]]] = [
    ("no jobs", [], []),
    ("pm2, script only", [PM2], [JobSpec("worker", "pm2", {"script": "worker.py"})]),
    ("pm2, every field",
     [{**PM2, "args": ["--fast", "-n", "2"], "interpreter": "python3", "cwd": "/srv/w",
       "env": {"MODE": "batch", "N": 3}}],
     [JobSpec("worker", "pm2", {"script": "worker.py", "args": ["--fast", "-n", "2"],
                                "interpreter": "python3", "cwd": "/srv/w",
                                "env": {"MODE": "batch", "N": 3}})]),
    ("cron, five fields", [CRON],
     [JobSpec("cleanup", "cron", {"schedule": "*/5 * * * *", "command": "echo hi"})]),
    ("cron, names and lists", [{**CRON, "schedule": "0 9-17/2 * jan,jul mon-fri"}],
     [JobSpec("cleanup", "cron", {"schedule": "0 9-17/2 * jan,jul mon-fri",
                                  "command": "echo hi"})]),
    ("cron, @daily", [{**CRON, "schedule": "@daily"}],
     [JobSpec("cleanup", "cron", {"schedule": "@daily", "command": "echo hi"})]),
    ("command with cwd", [{**COMMAND, "cwd": "/opt/mail"}],
     [JobSpec("mail", "command", {"create": "make up", "reload": "make reload",
                                  "cwd": "/opt/mail"})]),
    ("three kinds, in order", [PM2, CRON, COMMAND],
     [JobSpec("worker", "pm2", {"script": "worker.py"}),
      JobSpec("cleanup", "cron", {"schedule": "*/5 * * * *", "command": "echo hi"}),
      JobSpec("mail", "command", {"create": "make up", "reload": "make reload"})]),
]


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_parse_jobs_accepts(data: object, expected: list[JobSpec]) -> None:
    assert parse_jobs(data, SOURCE) == expected


def _without(job: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k != key}


INVALID: list[tuple[str, object, str]] = [
    ("not a list", PM2, "jobs.yaml: a list of jobs is expected"),
    ("nothing", None, "jobs.yaml: a list of jobs is expected"),
    ("an item is text", [PM2, "worker"],
     "jobs.yaml: jobs[1]: a mapping with name, kind and the kind's fields"),
    ("no name", [_without(PM2, "name")], "jobs.yaml: jobs[0].name: "),
    ("a name with a space", [{**PM2, "name": "my worker"}],
     "jobs.yaml: jobs[0].name: 'my worker' is not a valid name"),
    ("a name that is a shell command", [CRON, {**PM2, "name": "w;rm -rf ~"}],
     "jobs.yaml: jobs[1].name: 'w;rm -rf ~' is not a valid name"),
    ("a name starting with '-'", [{**PM2, "name": "-w"}], "jobs.yaml: jobs[0].name: '-w'"),
    ("no kind", [_without(PM2, "kind")],
     "jobs.yaml: jobs[0].kind: missing; kinds are pm2, cron, command"),
    ("an unknown kind", [{**PM2, "kind": "systemd"}],
     "jobs.yaml: jobs[0].kind: systemd; kinds are pm2, cron, command"),
    ("pm2 without script", [_without(PM2, "script")],
     "jobs.yaml: jobs[0].script: missing field for a pm2 job"),
    ("pm2 with a blank script", [{**PM2, "script": "  "}],
     "jobs.yaml: jobs[0].script: missing field for a pm2 job"),
    ("pm2 with a cron field", [COMMAND, {**PM2, "schedule": "@daily"}],
     "jobs.yaml: jobs[1].schedule: unknown field for a pm2 job"),
    ("pm2 env not a mapping", [{**PM2, "env": ["A=1"]}],
     "jobs.yaml: jobs[0].env: a mapping of variables"),
    ("cron without schedule", [_without(CRON, "schedule")],
     "jobs.yaml: jobs[0].schedule: missing field for a cron job"),
    ("cron without command", [_without(CRON, "command")],
     "jobs.yaml: jobs[0].command: missing field for a cron job"),
    ("cron with a cwd", [{**CRON, "cwd": "/tmp"}],
     "jobs.yaml: jobs[0].cwd: unknown field for a cron job"),
    ("command without reload", [_without(COMMAND, "reload")],
     "jobs.yaml: jobs[0].reload: missing field for a command job"),
    ("command without create", [_without(COMMAND, "create")],
     "jobs.yaml: jobs[0].create: missing field for a command job"),
    ("a name twice", [PM2, COMMAND, {**CRON, "name": "worker"}],
     "jobs.yaml: job worker is defined twice"),
]


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_parse_jobs_refuses_naming_file_index_and_field(data: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_jobs(data, SOURCE)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


SCHEDULES_OK = ["* * * * *", "*/5 * * * *", "0 1 * * *", "0,30 8-18 * * 1-5",
                "15 2 1 */3 *", "0 0 * * sun", "@reboot", "@hourly", "@daily", "@midnight",
                "@weekly", "@monthly", "@yearly", "@annually", "  0 1 * * *  "]
SCHEDULES_BAD = ["", "* * * *", "* * * * * *", "*/5 * * * * echo", "every day", "@",
                 "@sometimes", "@daily * * * *", "0 1 * * * ; rm -rf ~", "$(id) * * * *",
                 "0 1 * * *\n* * * * * evil", "@daily\n", "0 1 `id` * *"]


@pytest.mark.parametrize("schedule", SCHEDULES_OK)
def test_cron_schedules_accepted(schedule: str) -> None:
    (job,) = parse_jobs([{**CRON, "schedule": schedule}], SOURCE)
    assert job.fields["schedule"] == schedule


@pytest.mark.parametrize("schedule", SCHEDULES_BAD)
def test_cron_schedules_refused(schedule: str) -> None:
    with pytest.raises(ValueError, match=r"^jobs\.yaml: jobs\[0\]\.schedule: "):
        parse_jobs([{**CRON, "schedule": schedule}], SOURCE)


@pytest.mark.parametrize("command", ["echo hi\n# golive:shop:end\n* * * * * evil",
                                     "echo hi\r* * * * * evil", "echo hi\n"])
def test_a_cron_command_is_one_line(command: str) -> None:
    """A newline would put text of the job outside its line, even outside golive's
    block, where golive never removes it."""
    with pytest.raises(ValueError, match=r"^jobs\.yaml: jobs\[0\]\.command: "):
        parse_jobs([{**CRON, "command": command}], SOURCE)


def test_checksum_is_the_definition() -> None:
    a = JobSpec("w", "pm2", {"script": "w.py", "args": ["-a"]})
    assert a.checksum() == JobSpec("w", "pm2", {"args": ["-a"], "script": "w.py"}).checksum()
    assert a.checksum() == JobSpec("renamed", "pm2", dict(a.fields)).checksum()
    assert a.checksum() != JobSpec("w", "pm2", {"script": "w.py", "args": ["-b"]}).checksum()
    assert a.checksum() != JobSpec("w", "pm2", {"script": "w.py"}).checksum()
    assert JobSpec("c", "command", {"create": "x", "reload": "x"}).checksum() != \
        JobSpec("c", "cron", {"create": "x", "reload": "x"}).checksum()


# -- the job plan ----------------------------------------------------------------------

W = JobSpec("worker", "pm2", {"script": "worker.py"})
W2 = JobSpec("worker", "pm2", {"script": "worker.py", "args": ["--fast"]})
C = JobSpec("cleanup", "cron", {"schedule": "*/5 * * * *", "command": "echo hi"})
M = JobSpec("mail", "command", {"create": "a", "reload": "b"})

PLANS: list[tuple[str, list[JobSpec], list[str], dict[tuple[str, str], str],
                  list[tuple[str, str, str, str]]]] = [
    # (case, the order's jobs, job hosts, ledger, expected (host, job, kind, action))
    ("no job hosts", [W, C], [], {}, []),
    ("no jobs", [], ["j1"], {}, []),
    ("first deploy creates everywhere", [W, C], ["j1", "j2"], {},
     [("j1", "worker", "pm2", "create"), ("j1", "cleanup", "cron", "create"),
      ("j2", "worker", "pm2", "create"), ("j2", "cleanup", "cron", "create")]),
    ("known, same definition: reload", [W, C], ["j1"],
     {("j1", "worker"): W.checksum(), ("j1", "cleanup"): C.checksum()},
     [("j1", "worker", "pm2", "reload"), ("j1", "cleanup", "cron", "reload")]),
    ("known, changed definition", [W2], ["j1"], {("j1", "worker"): W.checksum()},
     [("j1", "worker", "pm2", "reload (definition changed)")]),
    ("a new job host creates, the old one reloads", [W], ["j1", "j2"],
     {("j1", "worker"): W.checksum()},
     [("j1", "worker", "pm2", "reload"), ("j2", "worker", "pm2", "create")]),
    ("a job the order lacks is reported, per host", [M], ["j1", "j2"],
     {("j1", "worker"): W.checksum(), ("j1", "cleanup"): C.checksum(),
      ("j2", "mail"): M.checksum()},
     [("j1", "mail", "command", "create"), ("j1", "cleanup", "", "not in this order"),
      ("j1", "worker", "", "not in this order"), ("j2", "mail", "command", "reload")]),
    ("ledger rows of hosts no longer job hosts are not reported", [W], ["j1"],
     {("old", "worker"): W.checksum(), ("old", "gone"): "x"},
     [("j1", "worker", "pm2", "create")]),
    ("every action at once", [W2, C, M], ["j1"],
     {("j1", "worker"): W.checksum(), ("j1", "cleanup"): C.checksum(), ("j1", "old"): "x"},
     [("j1", "worker", "pm2", "reload (definition changed)"),
      ("j1", "cleanup", "cron", "reload"), ("j1", "mail", "command", "create"),
      ("j1", "old", "", "not in this order")]),
]


@pytest.mark.parametrize(("jobs", "hosts", "ledger", "expected"), [c[1:] for c in PLANS],
                         ids=[c[0] for c in PLANS])
def test_plan_jobs(jobs: list[JobSpec], hosts: list[str], ledger: dict[tuple[str, str], str],
                   expected: list[tuple[str, str, str, str]]) -> None:
    plans = plan_jobs("web", jobs, hosts, ledger)
    assert plans == [JobPlan("web", *row) for row in expected]
    assert rules.CREATE == "create" and rules.RELOAD == "reload"
    assert rules.RELOAD_CHANGED == "reload (definition changed)"
    assert rules.ORPHAN == "not in this order"


# -- the crontab block -------------------------------------------------------------------

BEGIN, END = "# golive:shop:begin", "# golive:shop:end"
OWN = "# mine\nMAILTO=me@example.org\n0 1 * * * echo mine\n"
BLOCK = f"{BEGIN}\n# web/cleanup\n*/5 * * * * cd /srv/web/current && echo hi\n{END}"
NEW = f"{BEGIN}\n# web/cleanup\n*/10 * * * * cd /srv/web/current && echo hi\n{END}"
OTHER = "# golive:shop2:begin\n# api/x\n@daily echo other\n# golive:shop2:end\n"

CRONTABS: list[tuple[str, str, str, str]] = [
    # (case, crontab before, the new block, crontab after)
    ("empty crontab, a block", "", BLOCK, BLOCK + "\n"),
    ("the user's lines, no block yet: added after them", OWN, BLOCK, OWN + BLOCK + "\n"),
    ("no trailing newline", OWN.rstrip("\n"), BLOCK, OWN + BLOCK + "\n"),
    ("the block is replaced", OWN + BLOCK + "\n", NEW, OWN + NEW + "\n"),
    ("replaced in place, lines after it stay after it",
     OWN + BLOCK + "\n# after\n30 2 * * * echo after\n", NEW,
     OWN + NEW + "\n# after\n30 2 * * * echo after\n"),
    ("a block first in the file stays first", BLOCK + "\n" + OWN, NEW, NEW + "\n" + OWN),
    ("the same block again changes nothing", OWN + BLOCK + "\n" + OWN, BLOCK,
     OWN + BLOCK + "\n" + OWN),
    ("an empty block removes it, the rest is kept", OWN + BLOCK + "\n" + OWN, "", OWN + OWN),
    ("an empty block and nothing else: nothing", BLOCK + "\n", "", ""),
    ("an empty block on an empty crontab: nothing", "", "", ""),
    ("an empty block where there is none: the crontab as it was", OWN, "", OWN),
    ("another project's block is not ours", OTHER + OWN, BLOCK, OTHER + OWN + BLOCK + "\n"),
    ("our block next to another project's", OTHER + BLOCK + "\n" + OWN, NEW,
     OTHER + NEW + "\n" + OWN),
    ("a block written twice (by hand) is kept once, at the first place",
     BLOCK + "\n" + OWN + BLOCK + "\n", NEW, NEW + "\n" + OWN),
    ("a lone end marker is the user's line", OWN + END + "\n", BLOCK,
     OWN + END + "\n" + BLOCK + "\n"),
    ("markers with blanks around them", OWN + f"  {BEGIN} \nold line\n {END}\n", NEW,
     OWN + NEW + "\n"),
]


@pytest.mark.parametrize(("before", "block", "after"), [c[1:] for c in CRONTABS],
                         ids=[c[0] for c in CRONTABS])
def test_replace_cron_block(before: str, block: str, after: str) -> None:
    assert rules.replace_cron_block(before, "shop", block) == after
    # replacing again with the same block is a no-op
    assert rules.replace_cron_block(after, "shop", block) == after


def test_an_unterminated_block_is_refused_not_eaten() -> None:
    """A begin marker without its end (an edit by hand): golive cannot know where its
    block ends, and must not drop the user's lines after it."""
    broken = OWN + BEGIN + "\n*/5 * * * * echo old\n" + OWN
    with pytest.raises(ValueError, match="golive:shop:begin.*golive:shop:end"):
        rules.replace_cron_block(broken, "shop", BLOCK)


def test_render_cron_block() -> None:
    lines = {"web/b": "@daily cd /srv/web/current && b", "api/a": "* * * * * a"}
    assert rules.render_cron_block("shop", lines) == (
        f"{BEGIN}\n# api/a\n* * * * * a\n# web/b\n@daily cd /srv/web/current && b\n{END}")
    assert rules.render_cron_block("shop", {}) == ""
    assert rules.cron_markers("my-proj") == ("# golive:my-proj:begin", "# golive:my-proj:end")


CRON_LINES: list[tuple[str, dict[str, str], str, str]] = [
    ("plain", {"schedule": "*/5 * * * *", "command": "echo hi"}, "/home/d/app/current",
     "*/5 * * * * cd /home/d/app/current && echo hi"),
    ("@daily", {"schedule": "@daily", "command": "./bin/clean --all"}, "/srv/web/current",
     "@daily cd /srv/web/current && ./bin/clean --all"),
    ("a path with a space and a quote",
     {"schedule": "0 1 * * *", "command": "echo hi"}, "/srv/it's here/current",
     "0 1 * * * cd '/srv/it'\"'\"'s here/current' && echo hi"),
    ("% is a newline to cron: escaped", {"schedule": "0 1 * * *",
                                        "command": "tar czf b-$(date +%F).tgz data"},
     "/srv/100%/current", "0 1 * * * cd /srv/100\\%/current && tar czf b-$(date +\\%F).tgz data"),
]


@pytest.mark.parametrize(("fields", "cwd", "line"), [c[1:] for c in CRON_LINES],
                         ids=[c[0] for c in CRON_LINES])
def test_cron_line(fields: dict[str, str], cwd: str, line: str) -> None:
    assert rules.cron_line(JobSpec("j", "cron", fields), cwd) == line
    assert "\n" not in line


# -- pm2 ---------------------------------------------------------------------------------

ECOSYSTEMS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("script only: cwd is the release", {"script": "worker.py"},
     {"name": "shop-web-worker", "script": "worker.py", "cwd": "/home/d/app/current"}),
    ("every field", {"script": "worker.py", "interpreter": "python3", "cwd": "/opt/w",
                     "args": ["--fast", "two words"], "env": {"N": 3, "MODE": "x y"}},
     {"name": "shop-web-worker", "script": "worker.py", "cwd": "/opt/w",
      "interpreter": "python3", "args": ["--fast", "two words"],
      "env": {"N": "3", "MODE": "x y"}}),
    ("args as one string are split", {"script": "w.js", "args": "--fast  -n 2"},
     {"name": "shop-web-worker", "script": "w.js", "cwd": "/home/d/app/current",
      "args": ["--fast", "-n", "2"]}),
    ("empty optional fields are left out", {"script": "w.js", "args": [], "interpreter": "",
                                            "env": {}, "cwd": ""},
     {"name": "shop-web-worker", "script": "w.js", "cwd": "/home/d/app/current"}),
]


@pytest.mark.parametrize(("fields", "app"), [c[1:] for c in ECOSYSTEMS],
                         ids=[c[0] for c in ECOSYSTEMS])
def test_pm2_ecosystem(fields: dict[str, Any], app: dict[str, Any]) -> None:
    name = rules.process_name("shop", "web", "worker")
    text = rules.pm2_ecosystem(JobSpec("worker", "pm2", fields), name, "/home/d/app/current")
    assert json.loads(text) == {"apps": [app]}


def test_pm2_commands() -> None:
    spec = JobSpec("worker", "pm2", {"script": "worker.py"})
    create = rules.pm2_command(spec, "shop-web-worker", "/d/current", "/d/.w.json", create=True)
    reload = rules.pm2_command(spec, "shop-web-worker", "/d/current", "/d/.w.json",
                               create=False)
    assert "pm2 start /d/.w.json --update-env && pm2 save --force" in create
    assert "pm2 startOrReload /d/.w.json --update-env && pm2 save --force" in reload
    assert rules.pm2_delete("shop-web-worker") == \
        "pm2 delete shop-web-worker && pm2 save --force"
    assert rules.process_name("shop", "web", "worker") == "shop-web-worker"


# -- hostile text stays text: the commands run by a real sh, with fake pm2/crontab -------

HOSTILE = "x'; touch PWNED; echo '$(touch PWNED2) `touch PWNED3` %s %% \\ \" \n next line"


def _fake(bin_dir: Path, program: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / program
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _sh(command: str, cwd: Path, bin_dir: Path) -> None:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-c", command], cwd=cwd, env=env, check=True,
                   stdin=subprocess.DEVNULL)


def _no_side_effects(folder: Path) -> None:
    assert not list(folder.rglob("PWNED*"))


def test_pm2_command_keeps_hostile_fields_as_data(tmp_path: Path) -> None:
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    work.mkdir()
    _fake(bin_dir, "pm2", f'for a in "$@"; do printf "%s\\n" "$a"; done >> {tmp_path}/pm2.args')
    spec = JobSpec("worker", "pm2", {"script": HOSTILE, "interpreter": HOSTILE,
                                     "args": [HOSTILE, "-n"], "env": {"X": HOSTILE}})
    file = str(work / "it's a \"file\" $(x).json")
    _sh(rules.pm2_command(spec, "shop-web-worker", "/srv/it's/current", file, create=True),
        work, bin_dir)
    app = json.loads(Path(file).read_text())["apps"][0]
    assert app == {"name": "shop-web-worker", "script": HOSTILE, "interpreter": HOSTILE,
                   "args": [HOSTILE, "-n"], "env": {"X": HOSTILE},
                   "cwd": "/srv/it's/current"}
    assert (tmp_path / "pm2.args").read_text().splitlines() == [
        "start", file, "--update-env", "save", "--force"]
    _sh(rules.pm2_delete("shop-web-worker"), work, bin_dir)
    _no_side_effects(tmp_path)


def test_install_crontab_keeps_the_text_exactly(tmp_path: Path) -> None:
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    work.mkdir()
    _fake(bin_dir, "crontab", f'[ "$1" = "-" ] && cat > {tmp_path}/installed')
    text = OWN + f"{BEGIN}\n# web/x\n* * * * * cd /srv && {HOSTILE.replace(chr(10), ' ')}\n{END}\n"
    _sh(rules.install_crontab(text), work, bin_dir)
    assert (tmp_path / "installed").read_text() == text
    _sh(rules.install_crontab(""), work, bin_dir)
    assert (tmp_path / "installed").read_text() == ""
    _no_side_effects(tmp_path)


def test_a_cron_line_cds_to_a_hostile_path_as_data(tmp_path: Path) -> None:
    """The line's ``cd`` part, run by sh as cron would (after cron's % unescaping)."""
    folder = tmp_path / "it's $(touch PWNED) `x` here"
    folder.mkdir()
    line = rules.cron_line(JobSpec("j", "cron", {"schedule": "@daily", "command": "pwd > out"}),
                           str(folder))
    command = line.removeprefix("@daily ").replace("\\%", "%")
    subprocess.run(["sh", "-c", command], cwd=tmp_path, check=True, stdin=subprocess.DEVNULL)
    assert (folder / "out").read_text().strip() == str(folder)
    _no_side_effects(tmp_path)
