"""Hosts, the SQL ledger and the job ledger through the HTTP API, after a real deployment
(git repository, local hosts, SQL on a SQLite target, a command job on a job host): each
operation's answer, its refusals (403 naming the roles, 404, 422 naming the field), and
no host password or key in what the API answers."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from golive.domain.jobs import JobSpec
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import Host, SqlExecution
from golive.testing.server import api_error as error
from golive.testing.server import api_token, bearer
from golive.testing.sshd import SshServer
from golive.testing.world import apply_config, deploy, file_order, local_hosts, make_repo, rows

API = "/api/v1"
SECRETS = {"HOST_PASSWORD": "host-pw-Lg81",
           "HOST_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nkey-Lg82\n-----END OPENSSH "
                       "PRIVATE KEY-----\n"}
MEMBERS = [{"user": "olga", "roles": ["owner"]}, {"user": "dev", "roles": ["developer"]},
           {"user": "tess", "roles": ["tester"]}, {"user": "rel", "roles": ["releaser"]}]
SQL = ("CREATE TABLE coupons (code TEXT PRIMARY KEY, pct INTEGER NOT NULL);\n"
       "INSERT INTO coupons (code, pct) VALUES ('WELCOME', 10);\n")
MAIL = {"name": "mail", "kind": "command", "create": "echo created >> ~/jobs.log",
        "reload": "echo reloaded >> ~/jobs.log"}


@dataclass
class World:
    api: TestClient
    runtime: Runtime
    root: Path
    config: dict[str, Any]
    tokens: dict[str, str]
    order: int

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.api.request(method, API + path, headers=bearer(self.tokens[who]), **kwargs)

    def ok(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(who, method, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


def golive_yaml(root: Path, repo: str, extra_hosts: list[dict[str, Any]]) -> dict[str, Any]:
    stage = {"path": "srv/api", "hosts": ["h1"], "job_hosts": ["j1"], "database": "shop-test"}
    return {
        "hosts": [*local_hosts(root, ["h1", "j1"]), *extra_hosts],
        "databases": [{"name": "shop-test", "url": f"sqlite:///{root / 'shop-test.db'}"}],
        "projects": [
            {"name": "shop", "stages": ["test", "prod"], "members": MEMBERS,
             "services": [{"name": "api", "repo": repo, "build": "mkdir -p dist && cp -r "
                           "src/. dist/", "pack": ["dist"], "stages": {"test": stage}}]},
            {"name": "blog", "stages": ["test"], "members": [{"user": "bea", "roles": ["owner"]}],
             "services": [{"name": "web", "repo": repo,
                           "stages": {"test": {"path": "srv/web", "hosts": ["h1"]}}}]},
        ],
    }


def secret_hosts(closed: int) -> list[dict[str, Any]]:
    """Two SSH hosts whose credentials are stored secrets; nothing listens at ``closed``."""
    return [{"name": "vault-pw", "address": "127.0.0.1", "port": closed, "user": "deploy",
             "password": "${HOST_PASSWORD}"},
            {"name": "vault-key", "address": "127.0.0.1", "port": closed, "user": "deploy",
             "private_key": "${HOST_KEY}"}]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port bound and not listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def world(api: TestClient, sqlite_runtime: Runtime, tmp_path: Path, closed_port: int
          ) -> World:
    """Order 1 of shop deployed on test: its two statements ran on shop-test, its job
    ``mail`` was created on the job host j1."""
    repo = make_repo(tmp_path, "api", {"src/index.html": "v1\n"},
                     branches={"feature/x": {"src/index.html": "v2\n"}})
    config = golive_yaml(tmp_path, repo.url, secret_hosts(closed_port))
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", config, SECRETS)
    job = JobSpec("mail", "command", {k: v for k, v in MAIL.items()
                                      if k not in ("name", "kind")})
    order = file_order(sqlite_runtime, "dev", "shop",
                       [ItemRequest("api", "feature/x", SQL, jobs=(job,))])
    assert deploy(sqlite_runtime, order, "dev")[1]
    names = ("admin", "olga", "dev", "tess", "rel", "bea")
    return World(api, sqlite_runtime, tmp_path, config,
                 {n: api_token(sqlite_runtime, n) for n in names}, order)


# -- hosts ------------------------------------------------------------------------------


def test_host_list_masks_every_credential(world: World) -> None:
    response = world.call("dev", "GET", "/hosts")
    assert response.status_code == 200, response.text
    hosts = {h["name"]: h for h in response.json()}
    assert list(hosts) == ["h1", "j1", "vault-key", "vault-pw"]
    assert set(hosts["h1"]) == {"name", "transport", "address", "port", "user", "zone",
                                "host_key", "credential"}
    assert (hosts["h1"]["transport"], hosts["h1"]["credential"]) == ("local", "")
    assert hosts["vault-pw"]["credential"] == "password ***"
    assert hosts["vault-key"]["credential"] == "stored key ***"
    assert (hosts["vault-pw"]["user"], hosts["vault-pw"]["host_key"]) == ("deploy", "")
    for secret in (SECRETS["HOST_PASSWORD"], "key-Lg82", "PRIVATE KEY"):
        assert secret not in response.text


def test_host_check_reports_and_an_unreachable_host_is_an_answer(
        world: World, closed_port: int) -> None:
    refused = error(world.call("olga", "POST", "/hosts/h1/check"), 403)
    assert refused["message"] == "checking host h1 needs a site admin; olga is not one"
    checked = world.ok("admin", "POST", "/hosts/h1/check")
    assert checked["name"] == "h1" and checked["reachable"] is True
    assert list(checked["disk"]) == ["srv/api", "srv/web"]
    assert all(v.endswith(" MiB free") for v in checked["disk"].values())

    down = world.ok("admin", "POST", "/hosts/vault-pw/check")
    assert down["reachable"] is False and down["disk"] == {}
    assert down["message"] == f"host vault-pw (127.0.0.1:{closed_port}): Connection refused"
    assert SECRETS["HOST_PASSWORD"] not in str(down)

    missing = error(world.call("admin", "POST", "/hosts/nope/check"), 404)
    assert missing["message"] == "host nope does not exist"


def test_host_trust_pins_the_key_a_real_sshd_presents(
        world: World, sshd_factory: Any) -> None:
    server: SshServer = sshd_factory(hosts=1)
    extra = [{"name": "web-1", "address": "127.0.0.1", "port": server.port,
              "user": server.users[0].name, "key": str(server.client_key)}]
    config = {**world.config, "hosts": [*world.config["hosts"], *extra]}
    apply_config(world.runtime, world.root / "golive.yaml", config, SECRETS)
    refused = error(world.call("olga", "POST", "/hosts/web-1/trust"), 403)
    assert refused["message"] == "accepting a host key needs a site admin; olga is not one"
    assert refused["needed_roles"] == ["admin"]
    (row,) = rows(world.runtime, Host, Host.name == "web-1")
    assert row.host_key is None

    trusted = world.ok("admin", "POST", "/hosts/web-1/trust")
    assert trusted == {"name": "web-1", "old_key": "", "new_key": server.host_key_fingerprint}
    (row,) = rows(world.runtime, Host, Host.name == "web-1")
    assert row.host_key == " ".join(server.host_public_key.split()[:2])
    listed = {h["name"]: h for h in world.ok("dev", "GET", "/hosts")}
    assert listed["web-1"]["host_key"] == server.host_key_fingerprint
    assert listed["web-1"]["credential"] == f"key file {server.client_key}"
    checked = world.ok("admin", "POST", "/hosts/web-1/check")
    assert (checked["reachable"], checked["pinned"]) == (True, True)

    local = error(world.call("admin", "POST", "/hosts/h1/trust"), 422)
    assert local["message"] == "host h1 is a local host: it has no host key"
    assert error(world.call("admin", "POST", "/hosts/nope/trust"), 404)["kind"] == "NotFound"


# -- SQL --------------------------------------------------------------------------------


def test_sql_list_shows_the_ledger_per_database(world: World) -> None:
    ledger = world.ok("tess", "GET", f"/orders/{world.order}/sql")
    assert [(e["statement"], e["text"].split()[0]) for e in ledger] == [
        ("api:1", "CREATE"), ("api:2", "INSERT")]
    for entry in ledger:
        (run,) = entry["executions"]
        assert (run["database"], run["stage"], run["status"], run["by"]) == (
            "shop-test", "test", "success", "dev")
        assert run["at"] and run["duration_ms"] is not None
    assert ledger[1]["executions"][0]["rows"] == 1
    with sqlite3.connect(world.root / "shop-test.db") as db:
        assert db.execute("SELECT code, pct FROM coupons").fetchall() == [("WELCOME", 10)]

    refused = error(world.call("bea", "GET", f"/orders/{world.order}/sql"), 403)
    assert refused["message"] == (f"reading order {world.order} needs the role developer or "
                                  "tester or releaser or owner; bea has no role in this project")
    assert error(world.call("dev", "GET", "/orders/99/sql"), 404)["message"] == \
        "order 99 does not exist"


def test_sql_resolve_settles_an_unknown_statement(world: World) -> None:
    # what recovery leaves after the process running statement 2 died mid-statement
    second = rows(world.runtime, SqlExecution)[1].id
    with world.runtime.store.session() as session:
        session.execute(update(SqlExecution).where(SqlExecution.id == second)
                        .values(status="unknown"))
        session.commit()
    path = f"/orders/{world.order}/sql/api:2/resolve"
    refused = error(world.call("dev", "POST", path, json={"as": "executed"}), 403)
    assert refused["needed_roles"] == ["releaser", "owner"]
    assert "resolving a statement needs the role releaser or owner; dev has developer" in \
        refused["message"]
    wrong = error(world.call("rel", "POST", path, json={"as": "maybe"}), 422)
    assert [f["path"] for f in wrong["fields"]] == ["body.as"]
    extra = error(world.call("rel", "POST", path, json={"as": "retry", "force": True}), 422)
    assert [f["path"] for f in extra["fields"]] == ["body.force"]
    assert error(world.call("rel", "POST", f"/orders/{world.order}/sql/api:7/resolve",
                            json={"as": "retry"}), 422)["message"] == \
        f"order {world.order} has no statement api:7"

    done = world.ok("rel", "POST", path, json={"as": "executed", "database": "shop-test"})
    assert done == {"order": world.order, "statement": "api:2", "databases": ["shop-test"],
                    "outcome": "executed"}
    (settled,) = rows(world.runtime, SqlExecution, SqlExecution.id == second)
    assert settled.status == "success" and settled.message.startswith(
        "resolved by rel as executed")
    again = error(world.call("rel", "POST", path, json={"as": "executed"}), 422)
    assert again["message"] == (f"statement api:2 of order {world.order} is not unknown: "
                                "nothing to resolve")


def test_approve_sql_and_replacing_an_items_sql(world: World) -> None:
    base = f"/orders/{world.order}"
    refused = error(world.call("dev", "POST", f"{base}/approve-sql"), 403)
    assert refused["needed_roles"] == ["releaser", "owner"]
    approved = world.ok("rel", "POST", f"{base}/approve-sql")
    assert approved == {"order": world.order, "approved": 2, "approved_by": "rel"}

    more = SQL + "UPDATE coupons SET pct = 20 WHERE code = 'WELCOME';\n"
    replaced = world.ok("dev", "PUT", f"{base}/sql/api", json={"sql": more})
    assert replaced == {"order": world.order, "service": "api", "statements": 3}
    assert [e["executions"] for e in world.ok("dev", "GET", f"{base}/sql")][2] == []

    edited = error(world.call("dev", "PUT", f"{base}/sql/api",
                              json={"sql": SQL.replace("10", "15")}), 422)
    assert edited["message"].startswith("statement api:2 has run on shop-test (success); "
                                        "it cannot be edited or removed")
    assert error(world.call("tess", "PUT", f"{base}/sql/api", json={"sql": more}),
                 403)["needed_roles"] == ["developer", "owner"]
    wrong = error(world.call("dev", "PUT", f"{base}/sql/api", json={"script": more}), 422)
    assert sorted(f["path"] for f in wrong["fields"]) == ["body.script", "body.sql"]
    assert error(world.call("dev", "PUT", f"{base}/sql/nope", json={"sql": more}),
                 422)["message"] == f"service nope is not in order {world.order}"


# -- jobs -------------------------------------------------------------------------------


def test_jobs_list_add_and_remove(world: World) -> None:
    base = f"/orders/{world.order}/jobs"
    (mail,) = world.ok("tess", "GET", base)
    assert (mail["service"], mail["name"], mail["kind"]) == ("api", "mail", "command")
    assert mail["spec"]["create"] == MAIL["create"]
    (placed,) = mail["hosts"]
    assert (placed["stage"], placed["host"], placed["created_by_order"]) == (
        "test", "j1", world.order)
    assert placed["created_at"] and placed["reloaded_at"] is None
    assert (world.root / "hosts" / "j1" / "jobs.log").read_text() == "created\n"

    tick = {"name": "tick", "kind": "command", "create": "true", "reload": "true"}
    changed = {**MAIL, "reload": "echo again >> ~/jobs.log"}
    done = world.ok("dev", "PUT", f"{base}/api", json={"jobs": [changed, tick]})
    assert done == {"order": world.order, "service": "api", "jobs": 2}
    assert [(j["name"], j["spec"]["reload"]) for j in world.ok("dev", "GET", base)] == [
        ("mail", changed["reload"]), ("tick", "true")]

    bad = error(world.call("dev", "PUT", f"{base}/api", json={"jobs": [{"name": "x"}]}), 422)
    assert bad["message"] == "body: jobs[0].kind: missing; kinds are pm2, cron, command"
    shape = error(world.call("dev", "PUT", f"{base}/api", json={"jobs": "mail"}), 422)
    assert [f["path"] for f in shape["fields"]] == ["body.jobs"]
    refused = error(world.call("tess", "PUT", f"{base}/api", json={"jobs": [tick]}), 403)
    assert "needs the role developer or owner; tess has tester" in refused["message"]

    removed = world.ok("dev", "DELETE", f"{base}/api/tick")
    assert removed == {"order": world.order, "service": "api", "job": "tick"}
    assert [j["name"] for j in world.ok("dev", "GET", base)] == ["mail"]
    assert error(world.call("dev", "DELETE", f"{base}/api/tick"), 422)["message"] == \
        f"order {world.order} has no job tick for api"
    assert error(world.call("tess", "DELETE", f"{base}/api/mail"), 403)["kind"] == \
        "PermissionDenied"
    assert error(world.call("dev", "GET", "/orders/42/jobs"), 404)["kind"] == "NotFound"
