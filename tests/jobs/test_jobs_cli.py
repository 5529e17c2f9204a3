"""`golive order create --job SERVICE=FILE`, `order job add|list`, the jobs in `order plan`
and `order deploy --prune-jobs`, on local hosts (``command`` jobs only: a local host's pm2
or crontab would be the control machine's own)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive.cli.main import main
from golive.testing.world import make_repo

MAIL = {"name": "mail", "kind": "command", "create": "echo created >> ~/jobs.log",
        "reload": "echo reloaded >> ~/jobs.log"}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """Run a command that must succeed; its JSON output (``--json`` is added)."""
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def write(path: Path, jobs: object) -> str:
    path.write_text(yaml.safe_dump(jobs) if not isinstance(jobs, str) else jobs)
    return str(path)


@pytest.fixture
def shop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Project shop: service web on box-1, its jobs on j1 (both local hosts)."""
    repo = make_repo(tmp_path, "web", {"src/index.html": "<h1>shop</h1>\n"},
                     branches={"feature/x": {"src/new.html": "new\n"}})
    config = {
        "hosts": [{"name": n, "transport": "local", "root": str(tmp_path / "hosts" / n)}
                  for n in ("box-1", "j1")],
        "projects": [{
            "name": "shop",
            "members": [{"user": "dev", "roles": ["developer"]},
                        {"user": "qa", "roles": ["tester"]}],
            "services": [
                {"name": "web", "repo": repo.url, "build": "mkdir -p dist && cp -r src/. dist/",
                 "pack": ["dist"],
                 "stages": {"test": {"path": "srv/web", "hosts": ["box-1"],
                                     "job_hosts": ["j1"]}}},
                {"name": "api", "repo": repo.url,
                 "stages": {"test": {"path": "srv/api", "hosts": ["box-1"]}}},
            ]}],
    }
    path = tmp_path / "golive.yaml"
    path.write_text(yaml.safe_dump(config))
    code, _, err = run(capsys, "apply", "-f", str(path))
    assert code == 0, err
    return tmp_path


def create(capsys: pytest.CaptureFixture[str], *args: str) -> int:
    created = ok(capsys, "--as", "dev", "order", "create", "-p", "shop", "-s", "web=feature/x",
                 *args)
    assert run(capsys, "--as", "dev", "order", "submit", str(created["id"]))[0] == 0
    return int(created["id"])


def plan_jobs(capsys: pytest.CaptureFixture[str], number: int) -> list[tuple[str, ...]]:
    plan = ok(capsys, "order", "plan", str(number))
    return [(j["service"], j["host"], j["job"], j["kind"], j["action"]) for j in plan["jobs"]]


def test_jobs_from_create_to_deploy(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = write(shop / "jobs.yaml", [MAIL])
    created = ok(capsys, "--as", "dev", "order", "create", "-p", "shop", "-s", "web=feature/x",
                 "--job", f"web={jobs}")
    assert created["items"][0]["jobs"] == [
        {"name": "mail", "kind": "command",
         "spec": {"create": MAIL["create"], "reload": MAIL["reload"]}}]
    number = str(created["id"])
    assert ok(capsys, "order", "job", "list", number) == [
        {"service": "web", "name": "mail", "kind": "command",
         "spec": {"create": MAIL["create"], "reload": MAIL["reload"]}, "hosts": []}]
    assert run(capsys, "--as", "dev", "order", "submit", number)[0] == 0

    assert plan_jobs(capsys, int(number)) == [("web", "j1", "mail", "command", "create")]
    code, out, err = run(capsys, "order", "plan", number)
    assert code == 0, err
    assert "jobs" in out and "mail" in out and "create" in out

    assert ok(capsys, "--as", "dev", "order", "deploy", number)["status"] == "succeeded"
    log = shop / "hosts" / "j1" / "jobs.log"
    assert log.read_text() == "created\n"
    assert (shop / "hosts" / "j1" / "srv" / "web" / "current").is_symlink()  # a job host
    (listed,) = ok(capsys, "order", "job", "list", number)
    (where,) = listed["hosts"]
    assert (where["stage"], where["host"], where["created_by_order"]) == ("test", "j1", 1)
    assert where["created_at"] and where["reloaded_at"] is None
    assert plan_jobs(capsys, int(number)) == [("web", "j1", "mail", "command", "reload")]

    # change one job, add another (by name)
    more = write(shop / "more.yaml", [{**MAIL, "reload": "echo again >> ~/jobs.log"},
                                      {"name": "tick", "kind": "command", "create": "true",
                                       "reload": "true"}])
    code, out, err = run(capsys, "--as", "dev", "order", "job", "add", number, "-s", "web",
                         "-f", more)
    assert code == 0, err
    assert "web has 2 job(s)" in out
    assert [(j["name"], j["spec"]["reload"]) for j in ok(capsys, "order", "job", "list",
                                                          number)] == [
        ("mail", "echo again >> ~/jobs.log"), ("tick", "true")]
    assert plan_jobs(capsys, int(number)) == [
        ("web", "j1", "mail", "command", "reload (definition changed)"),
        ("web", "j1", "tick", "command", "create")]
    assert ok(capsys, "--as", "dev", "order", "deploy", number)["status"] == "succeeded"
    assert log.read_text() == "created\nagain\n"
    (listed, _) = ok(capsys, "order", "job", "list", number)
    assert listed["hosts"][0]["reloaded_at"]


def test_prune_jobs_from_the_command_line(shop: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    first = create(capsys, "--job", f"web={write(shop / 'jobs.yaml', [MAIL])}")
    assert ok(capsys, "--as", "dev", "order", "deploy", str(first))["status"] == "succeeded"
    tick = {"name": "tick", "kind": "command", "create": "true", "reload": "true"}
    second = create(capsys, "--job", f"web={write(shop / 'tick.yaml', [tick])}")
    assert plan_jobs(capsys, second) == [("web", "j1", "tick", "command", "create"),
                                         ("web", "j1", "mail", "", "not in this order")]
    assert ok(capsys, "--as", "dev", "order", "deploy", str(second))["status"] == "succeeded"
    assert plan_jobs(capsys, second)[1] == ("web", "j1", "mail", "", "not in this order")
    result = ok(capsys, "--as", "dev", "order", "deploy", str(second), "--prune-jobs")
    assert result["status"] == "succeeded"
    assert plan_jobs(capsys, second) == [("web", "j1", "tick", "command", "reload")]
    code, out, _ = run(capsys, "order", "logs", str(second))
    assert "job mail (command): removed (--prune-jobs)" in out
    assert "has no remove command: stop it by hand" in out


BAD_FILES: list[tuple[str, object, str]] = [
    ("not a list", {"name": "mail"}, "{file}: a list of jobs is expected"),
    ("no kind", [{"name": "mail"}], "{file}: jobs[0].kind: missing; kinds are pm2, cron, command"),
    ("a bad schedule", [MAIL, {"name": "c", "kind": "cron", "schedule": "every day",
                               "command": "x"}],
     "{file}: jobs[1].schedule: 'every day' is not a cron schedule"),
    ("a missing field", [{"name": "w", "kind": "pm2"}],
     "{file}: jobs[0].script: missing field for a pm2 job"),
    ("an unknown field", [{**MAIL, "schedule": "@daily"}],
     "{file}: jobs[0].schedule: unknown field for a command job"),
    ("a bad name", [{**MAIL, "name": "a b"}], "{file}: jobs[0].name: 'a b' is not a valid name"),
    ("the same job twice", [MAIL, MAIL], "{file}: job mail is defined twice"),
    ("not YAML", "- name: [unclosed\n  kind: pm2\n",
     "--job {file}: not valid YAML: expected ',' or ']', but got ':' (line 2, column 7)"),
]


@pytest.mark.parametrize(("content", "needle"), [c[1:] for c in BAD_FILES],
                         ids=[c[0] for c in BAD_FILES])
def test_a_bad_job_file_exits_2_with_one_line(
    shop: Path, capsys: pytest.CaptureFixture[str], content: object, needle: str
) -> None:
    file = write(shop / "bad jobs.yaml", content)
    code, _, err = run(capsys, "--as", "dev", "order", "create", "-p", "shop",
                       "-s", "web=feature/x", "--job", f"web={file}")
    assert code == 2, err
    assert needle.format(file=file) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ok(capsys, "order", "list") == []  # nothing was created

    # the same file given to `order job add`
    number = create(capsys)
    code, _, err = run(capsys, "--as", "dev", "order", "job", "add", str(number), "-s", "web",
                       "-f", file)
    assert code == 2, err
    assert needle.replace("--job", "--file").format(file=file) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ok(capsys, "order", "job", "list", str(number)) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--job", "api={jobs}"], "--job names api, which is not in the order"),
        (["--job", "web"], "--job expects SERVICE=VALUE"),
        (["--job", "web=/no/such/jobs.yaml"], "--job /no/such/jobs.yaml: cannot read the file"),
        (["--job", "web={jobs}", "--job", "web={jobs}"], "service web: job mail is given twice"),
    ],
)
def test_bad_job_options_exit_2(shop: Path, capsys: pytest.CaptureFixture[str],
                                args: list[str], needle: str) -> None:
    jobs = write(shop / "jobs.yaml", [MAIL])
    code, _, err = run(capsys, "--as", "dev", "order", "create", "-p", "shop",
                       "-s", "web=feature/x", *[a.format(jobs=jobs) for a in args])
    assert code == 2, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_job_add_refusals(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    number = str(create(capsys))
    jobs = write(shop / "jobs.yaml", [MAIL])
    code, _, err = run(capsys, "--as", "dev", "order", "job", "add", number, "-s", "api",
                       "-f", jobs)
    assert code == 2 and f"service api is not in order {number}" in err
    code, _, err = run(capsys, "--as", "qa", "order", "job", "add", number, "-s", "web",
                       "-f", jobs)
    assert code == 1 and "needs the role developer or owner" in err and "qa has tester" in err
    assert run(capsys, "--as", "dev", "order", "cancel", number, "--reason", "no")[0] == 0
    code, _, err = run(capsys, "--as", "dev", "order", "job", "add", number, "-s", "web",
                       "-f", jobs)
    assert code == 2 and "is cancelled: its jobs cannot change" in err
    assert ok(capsys, "order", "job", "list", number) == []



def test_job_remove_takes_a_job_out_of_the_order(shop: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    first = create(capsys, "--job", f"web={write(shop / 'jobs.yaml', [MAIL])}")
    assert ok(capsys, "--as", "dev", "order", "deploy", str(first))["status"] == "succeeded"
    code, out, err = run(capsys, "--as", "dev", "order", "job", "remove", str(first), "-s",
                         "web", "mail")
    assert code == 0, err
    assert "job hosts keep it until a deploy with" in " ".join(out.split())
    assert ok(capsys, "order", "job", "list", str(first)) == []
    assert plan_jobs(capsys, first) == [("web", "j1", "mail", "", "not in this order")]
    code, _, err = run(capsys, "--as", "dev", "order", "job", "remove", str(first), "-s",
                       "web", "mail")
    assert code == 2 and f"order {first} has no job mail for web" in err
    code, _, err = run(capsys, "--as", "qa", "order", "job", "remove", str(first), "-s",
                       "web", "mail")
    assert code == 1 and "needs the role developer or owner" in err
