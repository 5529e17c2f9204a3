"""`golive apply` and `golive export` end to end, in-process and as the console script."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from golive.cli.main import main

SECRETS = {
    "WEB_PASSWORD": "host-pw-Cq1",
    "SHOP_DB_PASSWORD": "db-pw-Cq2",
    "DINGTALK_URL": "https://127.0.0.1/robot/send?access_token=tok-Cq3",
    "DINGTALK_SECRET": "SEC-Cq4",
}

GOOD = """\
hosts:
  - {name: box-1, transport: local, root: /srv/golive-test/box-1}
  - {name: web-1, address: 127.0.0.1, user: deploy, password: "${WEB_PASSWORD}"}
databases:
  - {name: shop-prod, url: "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop"}
projects:
  - name: shop
    notify:
      - {type: dingtalk, webhook: "${DINGTALK_URL}", secret: "${DINGTALK_SECRET}"}
    members:
      - {user: dev, roles: [developer]}
    services:
      - name: api
        repo: /repos/api.git
        stages:
          test: {path: /srv/api, hosts: [box-1]}
          prod: {path: /srv/api, hosts: [web-1], database: shop-prod, batch: 1}
      - name: web
        repo: /repos/web.git
        stages:
          test: {path: /srv/web, hosts: [box-1]}
"""
WITHOUT_WEB = GOOD.split("      - name: web\n")[0]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, body: str, name: str = "golive.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


@pytest.fixture
def applied(tmp_path: Path, capsys: pytest.CaptureFixture[str],
            secrets_env: dict[str, str]) -> Path:
    path = write(tmp_path, GOOD)
    code, _, err = run(capsys, "apply", "-f", str(path))
    assert code == 0, err
    return path


def assert_one_error_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_apply_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           secrets_env: dict[str, str]) -> None:
    path = write(tmp_path, GOOD)
    code, out, err = run(capsys, "apply", "-f", str(path))
    assert code == 0, err
    assert err == ""
    for line in ("  created  host box-1", "  created  host web-1",
                 "  created  database shop-prod", "  created  project shop",
                 "  created  service shop/api", "  created  service shop/web",
                 "  created  channel shop/dingtalk-1", "  created  member shop/dev:developer"):
        assert line in out.splitlines()
    assert "applied" in out and "9 created" in " ".join(out.split())

    code, out, err = run(capsys, "apply", "-f", str(path))
    assert code == 0, err
    assert "created" not in out and "updated" not in out
    assert "8 unchanged" in " ".join(out.split())


def test_apply_json_lists_every_change(applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "apply", "-f", str(applied), "--json")
    assert code == 0
    changes = json.loads(out)
    assert {"kind": "service", "name": "shop/api", "action": "unchanged"} in changes
    assert {c["action"] for c in changes} == {"unchanged"}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("hosts:\n  - name: a\n    transport: local: x\n",
         ":3: YAML syntax error: mapping values are not allowed here"),
        (GOOD.replace("prod: {path: /srv/api, hosts: [web-1]",
                      "prod: {path: /srv/api, hostz: [web-1]"),
         ":17: projects[0].services[0].stages.prod.hostz: unknown field"),
        (GOOD.replace("        repo: /repos/web.git\n", ""),
         ":18: projects[0].services[1].repo: missing field"),
        (GOOD.replace("${SHOP_DB_PASSWORD}", "${SHOP_DB_PASSWORT}"),
         ":5: databases[0].url: environment variable SHOP_DB_PASSWORT is not set"),
        (GOOD.replace("hosts: [web-1], database", "hosts: [web-1, web-2], database"),
         ":17: projects[0].services[0].stages.prod.hosts[1]: host 'web-2' is not defined"),
        (GOOD.replace("database: shop-prod,", "database: shop-main,"),
         ":17: projects[0].services[0].stages.prod.database: database 'shop-main' is not defined"),
        (GOOD.replace("    notify:\n", "    stages: [test, staging]\n    notify:\n"),
         ":18: projects[0].services[0].stages.prod: stage 'prod' is not one of the project's"),
    ],
    ids=["syntax", "unknown-field", "missing-field", "unset-variable", "undefined-host",
         "undefined-database", "unknown-stage"],
)
def test_a_bad_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secrets_env: dict[str, str],
    body: str, where: str,
) -> None:
    path = write(tmp_path, body)
    code, out, err = run(capsys, "apply", "-f", str(path))
    assert code == 2, err
    assert_one_error_line(err, f"error: {path}{where}")
    # nothing was written: the store is still empty
    code, out, _ = run(capsys, "export")
    assert code == 0 and yaml.safe_load(out) == {}


def test_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "apply", "-f", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert_one_error_line(err, f"{tmp_path / 'nope.yaml'}: file not found")


def test_export_prints_yaml(applied: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "export")
    assert code == 0, err
    data = yaml.safe_load(out)
    assert [h["name"] for h in data["hosts"]] == ["box-1", "web-1"]
    assert data["hosts"][1]["password"] == "${WEB_PASSWORD}"
    assert data["databases"] == [
        {"name": "shop-prod", "url": "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop"}]
    shop = data["projects"][0]
    assert [s["name"] for s in shop["services"]] == ["api", "web"]
    assert shop["services"][0]["stages"]["prod"] == {
        "path": "/srv/api", "hosts": ["web-1"], "database": "shop-prod", "batch": 1}
    assert shop["notify"][0]["secret"] == "${DINGTALK_SECRET}"
    for secret in SECRETS.values():
        assert secret not in out

    code, clear, _ = run(capsys, "export", "--with-secrets")
    assert code == 0
    for secret in SECRETS.values():
        assert secret in clear

    target = tmp_path / "backup.yaml"
    code, out, _ = run(capsys, "export", "--with-secrets", "-o", str(target))
    assert code == 0 and "wrote" in out
    assert target.read_text(encoding="utf-8") == clear
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_apply_of_the_export_changes_nothing(
    applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, exported, _ = run(capsys, "export")
    target = write(tmp_path, exported, "exported.yaml")
    code, out, err = run(capsys, "apply", "-f", str(target), "--json")
    assert code == 0, err
    assert {c["action"] for c in json.loads(out)} == {"unchanged"}
    assert run(capsys, "export")[1] == exported


def test_a_non_admin_may_not_apply(applied: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, before, _ = run(capsys, "export")
    assert run(capsys, "user", "add", "bob")[0] == 0
    changed = applied.parent / "changed.yaml"
    changed.write_text(GOOD.replace("batch: 1", "batch: 2"), encoding="utf-8")
    code, _, err = run(capsys, "--as", "bob", "apply", "-f", str(changed))
    assert code == 1
    assert_one_error_line(err, "applying a configuration needs a site admin; bob is not one")
    monkeypatch.setenv("GOLIVE_USER", "bob")
    code, _, err = run(capsys, "apply", "-f", str(changed))
    assert code == 1 and "needs a site admin" in err
    code, _, err = run(capsys, "export", "--with-secrets")
    assert code == 1 and "exporting the configuration needs a site admin" in err
    monkeypatch.delenv("GOLIVE_USER")
    assert run(capsys, "export")[1] == before


def test_prune(applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smaller = write(tmp_path, WITHOUT_WEB, "smaller.yaml")
    code, out, _ = run(capsys, "apply", "-f", str(smaller))
    assert code == 0
    assert "kept  service shop/web (not in the file; --prune removes it)" in out
    assert "name: web\n" in run(capsys, "export")[1]
    code, out, _ = run(capsys, "apply", "-f", str(smaller), "--prune")
    assert code == 0
    assert "  removed  service shop/web" in out.splitlines()
    assert "name: web\n" not in run(capsys, "export")[1]


def test_prune_refuses_a_service_with_orders(
    applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "order", "create", "-p", "shop", "-s", "web=feature/x")
    assert code == 0, err
    _, before, _ = run(capsys, "export")
    smaller = write(tmp_path, WITHOUT_WEB.replace("batch: 1", "batch: 2"), "smaller.yaml")
    code, _, err = run(capsys, "apply", "-f", str(smaller), "--prune")
    assert code == 2
    assert_one_error_line(err, "service shop/web is not in the file but has orders; "
                               "it cannot be removed with --prune")
    assert run(capsys, "export")[1] == before  # not even the batch change was written


def test_a_wrong_secret_key_is_one_error_line(
    applied: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOLIVE_SECRET_KEY", Fernet.generate_key().decode())
    for args in (["export"], ["apply", "-f", str(applied)]):
        code, _, err = run(capsys, *args)
        assert code == 1
        assert_one_error_line(err, "a stored secret cannot be decrypted")


def golive_script() -> str:
    script = Path(sys.executable).parent / "golive"
    if script.exists():
        return str(script)
    found = shutil.which("golive")
    assert found, "the golive console script is not installed"
    return found


def test_the_console_script_reports_a_bad_file_without_traceback(
    tmp_path: Path, golive_home: Path
) -> None:
    path = write(tmp_path, GOOD.replace("prod: {path: /srv/api, hosts: [web-1]",
                                        "prod: {path: /srv/api, hostz: [web-1]"))
    env = {**os.environ, "GOLIVE_HOME": str(golive_home), **SECRETS}
    done = subprocess.run([golive_script(), "apply", "-f", str(path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert_one_error_line(done.stderr,
                          f"{path}:17: projects[0].services[0].stages.prod.hostz: unknown field")
    assert done.stdout == ""
