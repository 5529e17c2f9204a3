"""The people and configuration commands against a golive server (GOLIVE_URL and
GOLIVE_TOKEN), compared with the same command run on the local data directory: the same
stdout and exit code, and for a bad file the same one error line naming file, line and
field. The server is the real application served by uvicorn on 127.0.0.1, on the same
SQLite store the local runs open."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from golive.cli.main import main
from golive.services.runtime import Runtime
from golive.testing.server import LiveServer, api_token
from golive.testing.world import local_hosts

SECRETS = {"DB_PASSWORD": "db-pw-Rc51", "DINGTALK_SECRET": "SEC-Rc52",
           "DINGTALK_URL": "https://127.0.0.1:9/robot/send?access_token=tok-Rc53"}
Result = tuple[int, str, str]


def golive_yaml(root: Path) -> str:
    return yaml.safe_dump({
        "hosts": local_hosts(root, ["h1", "h2"]),
        "databases": [{"name": "shop-db",
                       "url": "mysql+pymysql://deploy:${DB_PASSWORD}@127.0.0.1/shop"}],
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "olga", "roles": ["owner"]},
                        {"user": "dev", "roles": ["developer"]}],
            "notify": [{"type": "dingtalk", "webhook": "${DINGTALK_URL}",
                        "secret": "${DINGTALK_SECRET}"}],
            "services": [{"name": "api", "repo": str(root / "api.git"), "stages": {
                "test": {"path": "srv/api", "lanes": {"t1": {"hosts": ["h1"]},
                                                      "t2": {"hosts": ["h2"]}}},
                "prod": {"path": "srv/api", "hosts": ["h1", "h2"], "database": "shop-db",
                         "batch": 1}}}]}],
    }, sort_keys=False)


class Cli:
    """Runs ``golive`` in this process, on the local store or against the server."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                 server: LiveServer, token: str) -> None:
        self.capsys, self.monkeypatch = capsys, monkeypatch
        self.server, self.token = server, token

    def local(self, *args: str) -> Result:
        self.monkeypatch.delenv("GOLIVE_URL", raising=False)
        self.monkeypatch.delenv("GOLIVE_TOKEN", raising=False)
        return self._run(args)

    def remote(self, *args: str, token: str | None = None) -> Result:
        self.monkeypatch.setenv("GOLIVE_URL", self.server.url)
        self.monkeypatch.setenv("GOLIVE_TOKEN", token or self.token)
        return self._run(args)

    def both(self, *args: str) -> Result:
        """The remote run's result, after checking it equals the local run's."""
        here = self.local(*args)
        there = self.remote(*args)
        assert there == here, args
        return there

    def _run(self, args: tuple[str, ...]) -> Result:
        code = main(list(args))
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err


@pytest.fixture
def cli(live: LiveServer, sqlite_runtime: Runtime, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    runner = Cli(capsys, monkeypatch, live, api_token(sqlite_runtime, "admin"))
    path = tmp_path / "golive.yaml"
    path.write_text(golive_yaml(tmp_path), encoding="utf-8")
    code, _, err = runner.remote("apply", "-f", str(path))
    assert code == 0, err
    return runner


def test_user_list_and_members_print_alike(cli: Cli) -> None:
    code, out, _ = cli.both("user", "list", "--json")
    assert code == 0
    assert {u["name"] for u in json.loads(out)} == {"admin", "olga", "dev"}
    assert cli.both("user", "list")[0] == 0
    code, out, _ = cli.both("member", "list", "-p", "shop", "--json")
    assert [(m["user"], m["roles"]) for m in json.loads(out)] == [
        ("dev", ["developer"]), ("olga", ["owner"])]


def test_member_roles_and_removal_print_alike(cli: Cli) -> None:
    def members() -> list[tuple[str, list[str]]]:
        listed = json.loads(cli.remote("member", "list", "-p", "shop", "--json")[1])
        return [(m["user"], m["roles"]) for m in listed]

    for run in (cli.local, cli.remote):
        code, out, err = run("member", "roles", "dev", "-p", "shop", "-r", "tester",
                             "-r", "developer")
        assert (code, out, err) == (0, "dev is developer, tester in shop\n", ""), err
    assert members() == [("dev", ["developer", "tester"]), ("olga", ["owner"])]
    code, _, err = cli.both("member", "roles", "olga", "-p", "shop", "-r", "developer")
    assert code == 2 and "owner" in err  # the last owner keeps the role
    code, out, err = cli.local("member", "remove", "dev", "-p", "shop")
    assert (code, out) == (0, "dev removed from shop\n"), err
    assert members() == [("olga", ["owner"])]
    code, _, err = cli.both("member", "remove", "dev", "-p", "shop")
    assert code != 0 and "dev" in err  # no longer a member: the same refusal both ways


def test_project_show_prints_alike_without_secrets(cli: Cli) -> None:
    for args in (("project", "show", "shop"), ("project", "show", "shop", "--json"),
                 ("project", "list", "--json")):
        code, out, err = cli.both(*args)
        assert code == 0, err
        for secret in SECRETS.values():
            assert secret not in out
    shop = json.loads(cli.remote("project", "show", "shop", "--json")[1])
    assert shop["services"][0]["stages"]["test"]["lanes"] == {"t1": ["h1"], "t2": ["h2"]}
    assert (shop["channels"][0]["webhook"], shop["channels"][0]["secret"]) == ("***", "***")
    code, _, err = cli.both("project", "show", "nope")
    assert (code, err.strip()) == (2, "error: project nope does not exist")


def test_a_token_made_remotely_is_shown_once_and_works(cli: Cli) -> None:
    code, out, err = cli.remote("token", "create", "laptop", "--expires-days", "7")
    assert code == 0, err
    token = re.findall(r"^glv_\S+$", out, re.MULTILINE)
    assert len(token) == 1 and "Shown only now" in out
    code, local_out, _ = cli.local("token", "create", "laptop", "--expires-days", "7")
    assert code == 0

    def shape(text: str) -> str:
        return re.sub(r"glv_\S+", "TOKEN", re.sub(r"token \d+", "token N",
                                                  re.sub(r"\d{4}-\d\d-\d\d \S+", "WHEN", text)))

    assert shape(local_out) == shape(out)

    code, out, _ = cli.remote("user", "list", "--json", token=token[0])
    assert code == 0 and "admin" in out
    code, listed, _ = cli.both("token", "list", "--json")
    assert token[0] not in listed
    mine = next(t for t in json.loads(listed) if t["prefix"] == token[0][:10])
    assert cli.remote("token", "revoke", str(mine["id"]))[:2] == (
        0, f"token {mine['id']} (laptop) revoked\n")
    code, _, err = cli.remote("user", "list", token=token[0])
    assert (code, err.strip()) == (1, "error: the API token is unknown, revoked or expired")


def test_a_password_set_remotely_logs_in(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("dev-password-Rc54\n"))
    code, out, err = cli.remote("user", "password", "dev", "--password-stdin")
    assert (code, out, err) == (0, "password of dev set\n", "")
    login = httpx.post(f"{cli.server.url}/api/v1/login",
                       json={"user": "dev", "password": "dev-password-Rc54"})
    assert login.status_code == 200, login.text
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = cli.remote("user", "password", "dev", "--password-stdin")
    assert (code, err.strip()) == (2, "error: a password needs at least 10 characters")
    code, out, _ = cli.both("audit", "--json")
    assert [(e["user"], e["action"], e["status"]) for e in json.loads(out)][:2] == [
        ("admin", "user.password", 422), ("admin", "user.password", 200)]
    assert "dev-password-Rc54" not in out


def test_a_wrong_field_is_named_alike(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    bad = golive_yaml(tmp_path).replace("database: shop-db", "databse: shop-db")
    path.write_text(bad, encoding="utf-8")
    code, out, err = cli.both("apply", "-f", str(path))
    line = next(n for n, text in enumerate(bad.splitlines(), 1) if "databse" in text)
    assert (code, out) == (2, "")
    assert err.strip() == (f"error: {path}:{line}: projects[0].services[0].stages.prod.databse: "
                           "unknown field")
    code, _, err = cli.both("apply", "-f", str(tmp_path / "missing.yaml"))
    assert (code, err.strip()) == (2, f"error: {tmp_path / 'missing.yaml'}: file not found")


def test_apply_and_export_print_alike(cli: Cli, tmp_path: Path) -> None:
    code, exported, _ = cli.both("export")
    assert code == 0
    for secret in SECRETS.values():
        assert secret not in exported
    path = tmp_path / "exported.yaml"
    path.write_text(exported, encoding="utf-8")
    code, out, _ = cli.both("apply", "-f", str(path), "--json")
    assert code == 0 and {c["action"] for c in json.loads(out)} == {"unchanged"}
    code, clear, _ = cli.both("export", "--with-secrets")
    assert code == 0 and SECRETS["DB_PASSWORD"] in clear
