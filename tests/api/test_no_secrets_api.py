"""No answer of the API carries a secret (DESIGN §11: secrets are masked in every log
and API response), and the audit log does not keep one either.

The world has a secret in every place golive.yaml can hold one: a target database's
URL password, a DingTalk channel's signing secret and the access token in its webhook
URL, an e-mail channel's SMTP password, the project's push secret, an SSH host's
password and another's private key, and URL passwords in a service's repository, build
command and hook. Every GET operation, and the writes that answer with data, are
called as the site admin and as the project's owner; every body — answers and errors
alike — is searched for each secret value. A deployment that fails on the repository
(its URL holds a password) is read back too: its error, log and live events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from golive.api.app import create_app
from golive.api.registry import OPERATIONS
from golive.api.schemas.deployments import ENDED
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime, open_runtime
from golive.settings import Settings
from golive.store.models import AuditEntry, Deployment
from golive.testing.server import api_token, bearer
from golive.testing.world import apply_config, file_order, local_hosts, make_repo, rows

API = "/api/v1"
BRANCH = "feature/x"
SECRETS = {
    "database password": "dbPassw0rdQz",
    "dingtalk access token": "dingAccessT0kenQz",
    "dingtalk signing secret": "SECdingSigningQz",
    "smtp password": "smtpPassw0rdQz",
    "push secret": "pushS3cretQz",
    "host password": "hostPassw0rdQz",
    "host private key": "PRIVKEYmaterialQz",
    "repository password": "repoPassw0rdQz",
    "build command password": "buildPassw0rdQz",
    "hook password": "hookPassw0rdQz",
}
ROLES = {"admin": "admin", "owner": "olga"}
PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
               f"{SECRETS['host private key']}\n-----END OPENSSH PRIVATE KEY-----\n")


def configuration(root: Path) -> dict[str, Any]:
    """golive.yaml with every secret it can hold, written in clear."""
    s = SECRETS
    local = {"mode": "checkout", "path": "srv/api"}
    return {
        "hosts": [*local_hosts(root, ["h-test"]),
                  {"name": "vault-1", "address": "127.0.0.1", "port": 9, "user": "deploy",
                   "password": s["host password"]},
                  {"name": "vault-2", "address": "127.0.0.1", "port": 9, "user": "deploy",
                   "private_key": PRIVATE_KEY}],
        "databases": [{"name": "shop-db",
                       "url": f"postgresql+psycopg://app:{s['database password']}"
                              "@127.0.0.1:9/shop"}],
        "projects": [{
            "name": "shop", "stages": ["test", "staging", "prod"],
            "push_secret": s["push secret"],
            "notify": [
                {"type": "dingtalk", "name": "robot", "secret": s["dingtalk signing secret"],
                 "webhook": "http://127.0.0.1:9/robot/send?access_token="
                            + s["dingtalk access token"]},
                {"type": "email", "name": "mail", "smtp_host": "127.0.0.1", "smtp_port": 9,
                 "smtp_user": "mailer", "smtp_password": s["smtp password"],
                 "mail_from": "golive@example.com", "to": ["ops@example.com"]}],
            "members": [{"user": "olga", "roles": ["owner"]},
                        {"user": "dev", "roles": ["developer"]}],
            "services": [
                # the clone fails: its URL's password is in git's error
                {"name": "api",
                 "repo": f"http://deploy:{s['repository password']}@127.0.0.1:9/api.git",
                 "stages": {"test": {**local, "hosts": ["h-test"], "database": "shop-db"},
                            "staging": {**local, "hosts": ["vault-1"]},
                            "prod": {**local, "hosts": ["vault-2"]}}},
                # the build fails: the command holds a URL with a password
                {"name": "worker", "repo": str(root / "repos" / "worker.git"),
                 "build": f"test -e https://ci:{s['build command password']}@127.0.0.1:9/ok",
                 "stages": {"test": {**local, "path": "srv/worker", "hosts": ["h-test"]}}},
                # the hook after the switch fails: the same
                {"name": "web", "repo": str(root / "repos" / "web.git"),
                 "post_deploy": [f"test -e https://hook:{s['hook password']}@127.0.0.1:9/r"],
                 "stages": {"test": {**local, "path": "srv/web", "hosts": ["h-test"]}}}],
        }],
    }


SERVICES = ("api", "worker", "web")
"""One order each; each order's deployment on test fails in its own way."""


@dataclass
class World:
    runtime: Runtime
    client: TestClient
    tokens: dict[str, str]
    orders: list[int]
    deployments: list[int]
    deploy_answers: list[str]
    """The bodies of the deploy requests that started ``deployments``."""

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, API + path, headers=bearer(self.tokens[role]),
                                   **kwargs)


def wait_until_ended(runtime: Runtime, deployment_id: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        (deployment,) = rows(runtime, Deployment, Deployment.id == deployment_id)
        if deployment.status in ENDED:
            return
        assert time.monotonic() < deadline, f"deployment {deployment_id} is {deployment.status}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("api-secrets")
    runtime = open_runtime(Settings(home=root / "home", database_url="", secret_key=""))
    try:
        for name in ("worker", "web"):
            make_repo(root, name, {"app.txt": "v1\n"}, branches={BRANCH: {"app.txt": "v2\n"}})
        apply_config(runtime, root / "golive.yaml", configuration(root))
        orders = [file_order(runtime, "dev", "shop", [ItemRequest(name, BRANCH)], "leaky?")
                  for name in SERVICES]
        tokens = {role: api_token(runtime, name) for role, name in ROLES.items()}
        with TestClient(create_app(runtime=runtime, announce=lambda _: None)) as client:
            answers = [client.post(f"{API}/orders/{order}/deploy", json={},
                                   headers=bearer(tokens["owner"])) for order in orders]
            assert [a.status_code for a in answers] == [202] * len(orders), answers[0].text
            deployments = [a.json()["id"] for a in answers]
            for deployment in deployments:
                wait_until_ended(runtime, deployment)
            # deliver the failures' notifications now: their attempts are read below
            client.post(f"{API}/notifications/send", headers=bearer(tokens["admin"]))
            yield World(runtime, client, tokens, orders, deployments,
                        [a.text for a in answers])
    finally:
        runtime.close()


@pytest.fixture(autouse=True)
def golive_home(world: World, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GOLIVE_HOME stays the world's (its secret key, its git mirrors) in every test."""
    home = world.runtime.settings.home
    monkeypatch.setenv("GOLIVE_HOME", str(home))
    return home


def leaked(text: str) -> list[str]:
    """The secrets found in ``text``, by what they are."""
    return [what for what, value in SECRETS.items() if value in text]


# -- every read ----------------------------------------------------------------------------

Params = dict[str, Any]
Reads = Callable[[World], list[tuple[Params, Params]]]


def once(path: Params | None = None, query: Params | None = None) -> Reads:
    return lambda _: [(path or {}, query or {})]


def each_order(w: World) -> list[tuple[Params, Params]]:
    return [({"number": order}, {}) for order in w.orders]


READS: dict[str, Reads] = {
    "order.list": once(),
    "order.show": each_order,
    "order.history": each_order,
    "order.plan": each_order,
    "order.logs": each_order,
    "deployment.show": lambda w: [({"deployment_id": d}, {}) for d in w.deployments],
    "deployment.list": each_order,
    "user.list": once(),
    "user.me": once(),
    "member.list": once({"project": "shop"}),
    "token.list": once(),
    "audit.list": once(),
    "project.list": once(),
    "project.show": once({"project": "shop"}),
    "project.export": once({"project": "shop"}),
    "database.list": once(),
    "config.export": once(),  # secrets=true is the one way to ask for them
    "host.list": once(),
    "sql.list": each_order,
    "job.list": each_order,
    "notify.log": once(query={"project": "shop"}),
    "board.show": once(),
    "lane.list": once({"project": "shop"}),
    "dashboard.show": once(),
    "order.actions": each_order,
    "order.releases": each_order,
    "order.draft": each_order,
    # the repository with a password in its URL: git's error must not repeat it
    "service.branches": lambda _: [({"project": "shop", "service": name}, {})
                                   for name in ("api", "web")],
    "agent.list": once(),
}


def test_every_read_is_searched() -> None:
    reads = {name for name, op in OPERATIONS.items() if op.method == "GET"}
    assert sorted(reads - set(READS)) == [], "GET operations this test does not call"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(READS))
def test_no_read_answers_with_a_secret(world: World, name: str, role: str) -> None:
    assert name in OPERATIONS, f"{name} is not registered"
    op = OPERATIONS[name]
    for path, query in READS[name](world):
        response = world.call(role, "GET", op.path.format(**path), params=query)
        assert response.status_code != 500, response.text
        assert leaked(response.text) == [], f"{name} {path} as {role}: {response.text}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_failed_deployment_shows_no_secret(world: World, service: str) -> None:
    """Its error, the deploy's answer and the live events, for each way it failed."""
    index = SERVICES.index(service)
    deployment_id = world.deployments[index]
    (deployment,) = rows(world.runtime, Deployment, Deployment.id == deployment_id)
    assert deployment.status == "failed" and deployment.error, deployment.error
    assert leaked(world.deploy_answers[index]) == [], world.deploy_answers[index]
    for role in ROLES:
        events = world.call(role, "GET", f"/deployments/{deployment_id}/events")
        assert events.status_code == 200 and "event: end" in events.text
        assert leaked(events.text) == [], events.text
    assert leaked(deployment.error) == [], deployment.error


def test_the_notification_attempts_are_there_to_search(world: World) -> None:
    """The failure was told through both channels, and each attempt failed with an
    error: the searches of notify.log above read real errors."""
    attempts = world.call("owner", "GET", "/notifications", params={"project": "shop"}).json()
    assert {a["channel"] for a in attempts} == {"robot", "mail"}, attempts
    assert all(a["error"] and not a["ok"] for a in attempts), attempts


def test_config_export_gives_its_secrets_to_a_site_admin_only_on_request(world: World) -> None:
    """The export without ``secrets=true`` is searched above; with it, only a site admin
    gets the values — and the owner's refusal does not quote them."""
    refused = world.call("owner", "GET", "/config", params={"secrets": "true"})
    assert refused.status_code == 403 and leaked(refused.text) == []
    clear = world.call("admin", "GET", "/config", params={"secrets": "true"})
    assert clear.status_code == 200
    assert "database password" in leaked(clear.text)  # so the searches above can find one


# -- the writes that answer with data ------------------------------------------------------

def reapply(world: World, role: str) -> Any:
    """The world's golive.yaml sent again, its secrets as ${VAR} and their values beside."""
    text = yaml.safe_dump(configuration(world.runtime.settings.home.parent), sort_keys=False)
    variables = {}
    for index, value in enumerate(SECRETS.values()):
        variables[f"SECRET_{index}"] = value
        text = text.replace(value, f"${{SECRET_{index}}}")
    return world.call(role, "POST", "/config", json={"text": text, "secrets": variables})


WRITES: dict[str, Callable[[World, str], Any]] = {
    "order.create": lambda w, role: w.call(role, "POST", "/orders", json={
        "project": "shop", "items": [{"service": "api", "branch": BRANCH}]}),
    "member.add": lambda w, role: w.call(role, "POST", "/projects/shop/members", json={
        "user": "dev", "roles": ["tester"]}),
    "user.update": lambda w, role: w.call(role, "PATCH", f"/users/{ROLES[role]}", json={
        "mobile": "13800000000"}),
    "token.create": lambda w, role: w.call(role, "POST", "/tokens", json={"name": "spare"}),
    "config.apply": reapply,
    "notify.test": lambda w, role: w.call(role, "POST", "/channels/shop/robot/test"),
    "host.check": lambda w, role: w.call(role, "POST", "/hosts/vault-1/check"),
    "host.trust": lambda w, role: w.call(role, "POST", "/hosts/vault-2/trust"),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(WRITES))
def test_no_write_answers_with_a_secret(world: World, name: str, role: str) -> None:
    response = WRITES[name](world, role)
    assert response.status_code != 500, response.text  # 502: a host that is not there
    assert leaked(response.text) == [], f"{name} as {role}: {response.text}"


# -- the audit log -------------------------------------------------------------------------

AUDITED_YAML = """\
hosts:
  - name: audit-1
    address: 127.0.0.1
    user: deploy
    password: auditHostPassw0rd
  - name: audit-2
    address: 127.0.0.1
    user: deploy
    password: correct horse auditStaple
  - name: audit-3
    address: 127.0.0.1
    user: deploy
    private_key: |
      -----BEGIN OPENSSH PRIVATE KEY-----
      auditKeyMaterial
      -----END OPENSSH PRIVATE KEY-----
databases:
  - name: audit-db
    url: postgresql+psycopg://app:${AUDIT_DB}@127.0.0.1:9/a
  - name: audit-db2
    url: "postgresql+psycopg://app:auditUrlPassw0rd@127.0.0.1:9/b"
projects:
  - name: audited
    push_secret: auditPushS3cret
    notify:
      - {type: dingtalk, secret: auditDingS3cret,
         webhook: "http://127.0.0.1:9/robot/send?access_token=auditDingT0ken"}
"""
"""A golive.yaml as people write one: plain and quoted values, a passphrase with spaces,
a private key as a block, a flow mapping, a URL password."""
AUDITED_SECRETS = ("auditHostPassw0rd", "auditStaple", "auditKeyMaterial", "auditUrlPassw0rd",
                   "auditPushS3cret", "auditDingS3cret", "auditDingT0ken")


def test_the_audit_log_keeps_no_secret_of_a_write(world: World) -> None:
    """config.apply with secrets written in the YAML text itself, another in its
    ``secrets``, and a user's new password: the entries keep none of them."""
    variable, new = "auditVariableS3cret", "auditNewPassw0rd"
    applied = world.call("admin", "POST", "/config",
                         json={"text": AUDITED_YAML, "secrets": {"AUDIT_DB": variable}})
    assert applied.status_code == 200, applied.text
    changed = world.call("admin", "PUT", "/users/dev/password", json={"password": new})
    assert changed.status_code == 200, changed.text
    stored = [repr(e.detail) for e in rows(world.runtime, AuditEntry,
                                           AuditEntry.action.in_(("config.apply",
                                                                  "user.password")))]
    assert any("audit-3" in d for d in stored) and any("'user': 'dev'" in d for d in stored)
    answered = world.call("admin", "GET", "/audit").text
    found = [value for value in (*AUDITED_SECRETS, variable, new)
             if value in answered or any(value in d for d in stored)]
    assert found == [], f"in the audit log: {found}; stored: {stored}"
