"""redeploy_on_push: a git push webhook redeploys, iteratively, the orders being tested on
the pushed branch. Real git repositories, local hosts, the default SQLite store; the
webhook route through FastAPI's test client; the project settings through golive.yaml."""

from __future__ import annotations

import hashlib
import hmac
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from golive.api import hooks
from golive.config.export import export_config
from golive.errors import InputError, NotFound, PermissionDenied
from golive.services import deploy as engine
from golive.services.orders import ItemRequest, get_order
from golive.services.pushes import PushOutcome, handle_push
from golive.services.runtime import Runtime
from golive.store.models import AuditEntry, CommitLedger, Deployment, OrderHistory, Project
from golive.testing.world import (
    Repo,
    act,
    apply_config,
    commit,
    deploy,
    file_order,
    host_root,
    local_hosts,
    make_repo,
    rows,
)

SECRET = "push-secret-Zq8"
BRANCH = "feature/x"
OTHER = "feature/y"
PATH = "srv/web"
BUILD = "mkdir -p dist && cp -r src/. dist/"
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "dora", "roles": ["developer"]},
           {"user": "tom", "roles": ["tester"]}, {"user": "rita", "roles": ["releaser"]}]


def configure(runtime: Runtime, root: Path, *, repo: Repo | None = None,
              **settings: Any) -> Repo:
    """Project shop (test, staging, prod on hosts t1, s1, p1), service web; its push
    secret from ${PUSH_SECRET}. A release fails on prod while ``<root>/fail-prod`` exists."""
    web = repo or make_repo(root, "web", {"src/index.html": "<h1>shop</h1>\n"},
                            branches={BRANCH: {"src/feature.html": "<p>x</p>\n"},
                                      OTHER: {"src/other.html": "<p>y</p>\n"}})
    fail_prod = shlex.quote(str(root / "fail-prod"))
    stages = {stage: {"mode": "artifact", "path": PATH, "hosts": [host]}
              for stage, host in (("test", "t1"), ("staging", "s1"), ("prod", "p1"))}
    project = {"name": "shop", "stages": ["test", "staging", "prod"], "members": MEMBERS,
               "redeploy_on_push": True, "push_secret": "${PUSH_SECRET}", **settings,
               "services": [{"name": "web", "repo": web.url, "build": BUILD, "pack": ["dist"],
                             "post_deploy": [f'test "$GOLIVE_STAGE" != prod || '
                                             f'test ! -e {fail_prod}'],
                             "stages": stages}]}
    apply_config(runtime, root / "golive.yaml",
                 {"hosts": local_hosts(root, ["t1", "s1", "p1"]), "projects": [project]},
                 env={"PUSH_SECRET": SECRET})
    return web


def github_delivery(branch: str, before: str, after: str, *, secret: str = SECRET,
                    event: str = "push", deleted: bool = False) -> tuple[dict[str, str], bytes]:
    """The headers and body GitHub sends for a push (signed with ``secret``)."""
    body = json.dumps({
        "ref": f"refs/heads/{branch}", "before": before, "after": after, "created": False,
        "deleted": deleted, "forced": False, "commits": [{"id": after, "message": "fix"}],
        "repository": {"full_name": "acme/web"}, "pusher": {"name": "alice-gh"},
        "sender": {"login": "alice-gh"}}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-github-event": event, "x-github-delivery": "72d3162e-cc78-11e3-81ab",
            "x-hub-signature-256": f"sha256={signature}",
            "content-type": "application/json"}, body


def push_hook(runtime: Runtime, headers: dict[str, str], body: bytes,
              provider: str = "github", project: str = "shop") -> PushOutcome:
    with runtime.store.session() as session:
        outcome = handle_push(session, runtime.box, provider, project, headers, body)
        session.commit()
    return outcome


def state(runtime: Runtime, order_id: int) -> str:
    with runtime.store.session() as session:
        return get_order(session, order_id).state


def deployments(runtime: Runtime, order_id: int) -> list[Deployment]:
    return rows(runtime, Deployment, Deployment.order_id == order_id)


def history(runtime: Runtime, order_id: int) -> list[OrderHistory]:
    return rows(runtime, OrderHistory, OrderHistory.order_id == order_id)


def branch_commit(runtime: Runtime, order_id: int, stage: str) -> str:
    (row,) = rows(runtime, CommitLedger, CommitLedger.order_id == order_id,
                  CommitLedger.stage == stage)
    return row.branch_commit


def served(root: Path, host: str, rel: str) -> Path:
    return host_root(root, host) / PATH / "current" / "dist" / rel


def on_test(runtime: Runtime, by: str = "alice", branch: str = BRANCH) -> int:
    """An order of web@branch filed by ``by`` and deployed on test."""
    order_id = file_order(runtime, by, "shop", [ItemRequest("web", branch)])
    assert deploy(runtime, order_id, by)[1]
    assert state(runtime, order_id) == "test:deployed"
    return order_id


def to_prod(runtime: Runtime, order_id: int) -> bool:
    """Deploy on test and staging with passes, then release; whether the release ran ok."""
    assert deploy(runtime, order_id, "alice")[1]
    assert act(runtime, order_id, "pass", "tom") == "test:passed"
    assert deploy(runtime, order_id, "rita")[1]
    assert act(runtime, order_id, "pass", "tom") == "staging:passed"
    return deploy(runtime, order_id, "rita", action="release")[1]


# --- the redeploy ------------------------------------------------------------------------------


def test_a_push_redeploys_the_order_being_tested_at_the_new_commit(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path)
    order_id = on_test(runtime)
    first = branch_commit(runtime, order_id, "test")
    assert first == web.head(BRANCH)

    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"}, "fix the feature")
    outcome = push_hook(runtime, *github_delivery(BRANCH, first, fixed))

    assert outcome.ignored == "" and outcome.refused == {}
    (deployment_id,) = outcome.deployments
    (_, asked) = deployments(runtime, order_id)
    assert (asked.id, asked.stage, asked.kind, asked.action, asked.policy, asked.requested_by,
            asked.status) == (deployment_id, "test", "iterative", "deploy",
                              "redeploy_on_push", "alice", "pending")
    assert state(runtime, order_id) == "test:deploying"

    assert engine.run_deployment(runtime, deployment_id)
    assert state(runtime, order_id) == "test:deployed"
    assert branch_commit(runtime, order_id, "test") == fixed
    assert served(tmp_path, "t1", "fix.html").read_text() == "<p>fixed</p>\n"
    moves = [(h.actor, h.action, h.to_state) for h in history(runtime, order_id)]
    assert moves[-4:] == [
        ("redeploy_on_push", "deploy", "test:deploying"),
        ("redeploy_on_push", "deployment", "test:deploying"),
        ("redeploy_on_push", "push", "test:deploying"),
        ("system", "succeed", "test:deployed")]
    (note,) = [h for h in history(runtime, order_id) if h.action == "push"]
    assert note.reason == (f"github: {fixed[:12]} pushed to {BRANCH} by alice-gh; deployment "
                           f"{deployment_id} redeploys test for alice")

    # the same delivery again (GitHub's "Redeliver"): the order already runs that commit
    again = push_hook(runtime, *github_delivery(BRANCH, first, fixed))
    assert again.deployments == []
    assert again.ignored == f"{BRANCH} at {fixed[:12]} is already deployed for order {order_id}"
    assert len(deployments(runtime, order_id)) == 2


def test_a_rejected_order_is_redeployed_too(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path)
    order_id = on_test(runtime)
    assert act(runtime, order_id, "reject", "tom", reason="prices are wrong") == "test:rejected"
    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"})
    (deployment_id,) = push_hook(runtime, *github_delivery(BRANCH, "0" * 40, fixed)).deployments
    assert engine.run_deployment(runtime, deployment_id)
    assert state(runtime, order_id) == "test:deployed"
    assert branch_commit(runtime, order_id, "test") == fixed


def test_with_redeploy_on_push_off_a_push_is_ignored(tmp_path: Path,
                                                     sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path, redeploy_on_push=False)
    order_id = on_test(runtime)
    first = web.head(BRANCH)
    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"})
    before = [(h.actor, h.action) for h in history(runtime, order_id)]

    outcome = push_hook(runtime, *github_delivery(BRANCH, first, fixed))
    assert outcome.deployments == []
    assert outcome.ignored == "redeploy_on_push is off for project shop"
    assert len(deployments(runtime, order_id)) == 1
    assert state(runtime, order_id) == "test:deployed"
    assert branch_commit(runtime, order_id, "test") == first
    assert [(h.actor, h.action) for h in history(runtime, order_id)] == before

    # and the setting is what lets the policy act: turned on, the same push redeploys
    configure(runtime, tmp_path, repo=web)
    assert len(push_hook(runtime, *github_delivery(BRANCH, first, fixed)).deployments) == 1


def test_a_push_to_another_branch_a_tag_or_a_deletion_redeploys_nothing(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path)
    order_id = on_test(runtime)
    other = commit(web, OTHER, {"src/other.html": "<p>y2</p>\n"})

    outcome = push_hook(runtime, *github_delivery(OTHER, "0" * 40, other))
    assert (outcome.deployments, outcome.ignored) == (
        [], f"no order of project shop is being tested on branch {OTHER}")

    deleted = push_hook(runtime, *github_delivery(BRANCH, web.head(BRANCH), "0" * 40,
                                                  deleted=True))
    assert (deleted.deployments, deleted.ignored) == ([], f"branch {BRANCH} was deleted")

    headers, body = github_delivery(BRANCH, "0" * 40, web.head(BRANCH))
    tag_body = body.replace(f"refs/heads/{BRANCH}".encode(), b"refs/tags/v1.0")
    headers["x-hub-signature-256"] = "sha256=" + hmac.new(
        SECRET.encode(), tag_body, hashlib.sha256).hexdigest()
    tag = push_hook(runtime, headers, tag_body)
    assert (tag.deployments, tag.ignored) == ([], "not a push to a branch (github event: push)")

    ping = push_hook(runtime, *github_delivery(BRANCH, "0" * 40, web.head(BRANCH),
                                               event="ping"))
    assert (ping.deployments, ping.ignored) == ([], "not a push to a branch (github event: ping)")
    assert len(deployments(runtime, order_id)) == 1
    assert state(runtime, order_id) == "test:deployed"


def test_a_bad_signature_is_refused_and_changes_nothing(tmp_path: Path,
                                                        sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path)
    order_id = on_test(runtime)
    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"})
    headers, body = github_delivery(BRANCH, "0" * 40, fixed, secret="guessed")

    with pytest.raises(PermissionDenied) as denied:
        push_hook(runtime, headers, body)
    assert denied.value.message == (
        "push webhook for project shop refused: the X-Hub-Signature-256 header does not match "
        "the body signed with the secret")
    good_headers, good_body = github_delivery(BRANCH, "0" * 40, fixed)
    with pytest.raises(PermissionDenied):  # a body changed on the way
        push_hook(runtime, good_headers, good_body.replace(b"alice-gh", b"mallory"))
    with pytest.raises(PermissionDenied, match="X-Gitlab-Token header is missing"):
        push_hook(runtime, good_headers, good_body, provider="gitlab")
    with pytest.raises(NotFound, match="project nope does not exist"):
        push_hook(runtime, good_headers, good_body, project="nope")
    with pytest.raises(NotFound, match="push webhook provider 'bitbucket'"):
        push_hook(runtime, good_headers, good_body, provider="bitbucket")
    # a signed body that is not JSON (a webhook set to form encoding)
    form = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Ffeature%2Fx%22%7D"
    form_headers = {**good_headers, "x-hub-signature-256": "sha256=" + hmac.new(
        SECRET.encode(), form, hashlib.sha256).hexdigest()}
    with pytest.raises(InputError, match="not JSON"):
        push_hook(runtime, form_headers, form)

    assert len(deployments(runtime, order_id)) == 1
    assert state(runtime, order_id) == "test:deployed"


def test_a_project_without_a_push_secret_takes_no_webhooks(tmp_path: Path,
                                                           sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path, push_secret="")
    order_id = on_test(runtime)
    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"})
    for secret in (SECRET, ""):
        with pytest.raises(PermissionDenied) as denied:
            push_hook(runtime, *github_delivery(BRANCH, "0" * 40, fixed, secret=secret))
        assert denied.value.message == ("project shop takes no push webhooks: it has no "
                                        "push_secret (set it in golive.yaml)")
    assert len(deployments(runtime, order_id)) == 1


def test_orders_past_testing_are_not_redeployed(tmp_path: Path,
                                                sqlite_runtime: Runtime) -> None:
    """Done, failed on the last stage, deployed on staging: all on the pushed branch; only
    the one on staging (not the last stage) is redeployed, there."""
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path)
    done = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert to_prod(runtime, done)
    assert state(runtime, done) == "done"
    (tmp_path / "fail-prod").write_text("")
    failed = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert not to_prod(runtime, failed)
    assert state(runtime, failed) == "prod:failed"
    staging = file_order(runtime, "dora", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(runtime, staging, "dora")[1]
    assert act(runtime, staging, "pass", "tom") == "test:passed"
    assert deploy(runtime, staging, "rita")[1]
    assert state(runtime, staging) == "staging:deployed"
    counts = {o: len(deployments(runtime, o)) for o in (done, failed)}

    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"})
    outcome = push_hook(runtime, *github_delivery(BRANCH, "0" * 40, fixed))

    (deployment_id,) = outcome.deployments
    assert (outcome.ignored, outcome.refused) == ("", {})
    asked = deployments(runtime, staging)[-1]
    assert (asked.id, asked.stage, asked.requested_by, asked.policy) == (
        deployment_id, "staging", "dora", "redeploy_on_push")
    assert {o: len(deployments(runtime, o)) for o in (done, failed)} == counts
    assert (state(runtime, done), state(runtime, failed)) == ("done", "prod:failed")
    assert engine.run_deployment(runtime, deployment_id)
    assert state(runtime, staging) == "staging:deployed"
    assert branch_commit(runtime, staging, "staging") == fixed

    # with only those two left on the branch, a push starts nothing
    assert act(runtime, staging, "cancel", "dora") == "cancelled"
    later = commit(web, BRANCH, {"src/fix.html": "<p>fixed again</p>\n"})
    outcome = push_hook(runtime, *github_delivery(BRANCH, fixed, later))
    assert (outcome.deployments, outcome.ignored) == (
        [], f"no order of project shop is being tested on branch {BRANCH}")


def test_a_refused_redeploy_is_noted_and_does_not_stop_the_others(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    """Two orders on test with the same branch: the first one's redeploy takes the lock of
    web on test, the second is refused (its history says why), the first goes on."""
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path)
    first = on_test(runtime, "alice")
    second = on_test(runtime, "dora")
    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"})

    outcome = push_hook(runtime, *github_delivery(BRANCH, "0" * 40, fixed))

    (deployment_id,) = outcome.deployments
    assert deployments(runtime, first)[-1].id == deployment_id
    assert list(outcome.refused) == [second]
    assert f"is being deployed by order {first}" in outcome.refused[second]
    assert len(deployments(runtime, second)) == 1
    assert state(runtime, second) == "test:deployed"
    (refusal,) = [h for h in history(runtime, second) if h.action == "auto_refused"]
    assert refusal.actor == "redeploy_on_push"
    assert refusal.reason.startswith(f"a push of {fixed[:12]} to {BRANCH} redeployed nothing: "
                                     f"service web on test is being deployed by order {first}")
    assert engine.run_deployment(runtime, deployment_id)
    assert state(runtime, first) == "test:deployed"
    assert branch_commit(runtime, first, "test") == fixed


# --- the route ----------------------------------------------------------------------------------


class Tasks:
    """The app's task runner, recording what it is handed."""

    def __init__(self) -> None:
        self.submitted: list[int] = []

    def submit(self, deployment_id: int) -> None:
        self.submitted.append(deployment_id)


def hook_client(runtime: Runtime) -> tuple[TestClient, Tasks]:
    app = FastAPI()
    app.include_router(hooks.router, prefix="/api/v1")
    tasks = Tasks()
    app.state.runtime, app.state.tasks = runtime, tasks
    return TestClient(app), tasks


def audit(runtime: Runtime) -> list[tuple[str, str, str, str, str, int]]:
    return [(e.user_name, e.address, e.action, e.target, e.project, e.status)
            for e in rows(runtime, AuditEntry)]


def test_the_webhook_route(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path)
    order_id = on_test(runtime)
    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"})
    client, tasks = hook_client(runtime)
    url = "/api/v1/hooks/github/shop"
    headers, body = github_delivery(BRANCH, "0" * 40, fixed)

    bad = client.post(url, content=body, headers={**headers, "X-Hub-Signature-256": "sha256=0"})
    assert bad.status_code == 403
    error = bad.json()["error"]
    assert (error["kind"], error["message"]) == (
        "PermissionDenied", "push webhook for project shop refused: the X-Hub-Signature-256 "
        "header does not match the body signed with the secret")
    assert SECRET not in bad.text
    assert client.post("/api/v1/hooks/bitbucket/shop", content=body,
                       headers=headers).status_code == 404
    missing = client.post("/api/v1/hooks/github/nope", content=body, headers=headers)
    assert (missing.status_code, missing.json()["error"]["kind"]) == (404, "NotFound")
    form = b"payload=%7B%7D"
    signed_form = {**headers, "X-Hub-Signature-256": "sha256=" + hmac.new(
        SECRET.encode(), form, hashlib.sha256).hexdigest()}
    not_json = client.post(url, content=form, headers=signed_form)
    assert (not_json.status_code, not_json.json()["error"]["kind"]) == (400, "InputError")
    assert tasks.submitted == [] and len(deployments(runtime, order_id)) == 1

    answer = client.post(url, content=body, headers=headers)
    assert answer.status_code == 200
    (deployment_id,) = answer.json()["deployments"]
    assert answer.json() == {"deployments": [deployment_id], "ignored": ""}
    assert tasks.submitted == [deployment_id]
    assert deployments(runtime, order_id)[-1].status == "pending"  # committed before submit

    assert audit(runtime) == [
        ("push:github", "testclient", "hook.push", url, "shop", 403),
        ("push:bitbucket", "testclient", "hook.push", "/api/v1/hooks/bitbucket/shop", "shop",
         404),
        ("push:github", "testclient", "hook.push", "/api/v1/hooks/github/nope", "nope", 404),
        ("push:github", "testclient", "hook.push", url, "shop", 400),
        ("push:github", "testclient", "hook.push", url, "shop", 200)]
    accepted = rows(runtime, AuditEntry)[-1]
    assert accepted.detail == {"deployments": [deployment_id], "ignored": "",
                               "branch": BRANCH, "after": fixed, "pusher": "alice-gh"}

    assert engine.run_deployment(runtime, deployment_id)
    assert state(runtime, order_id) == "test:deployed"
    ignored = client.post(url, content=body, headers=headers)
    assert ignored.json() == {"deployments": [], "ignored":
                              f"{BRANCH} at {fixed[:12]} is already deployed for order "
                              f"{order_id}"}
    assert tasks.submitted == [deployment_id]


# --- golive.yaml --------------------------------------------------------------------------------


def test_the_settings_apply_export_and_stay_sealed(tmp_path: Path,
                                                   sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = configure(runtime, tmp_path)
    (project,) = rows(runtime, Project)
    assert project.redeploy_on_push is True
    assert project.push_secret_enc and SECRET not in project.push_secret_enc
    assert runtime.box.open(project.push_secret_enc) == SECRET

    with runtime.store.session() as session:
        hidden = export_config(session, runtime.box)
        clear = export_config(session, runtime.box, with_secrets=True)
    assert SECRET not in hidden
    assert "  redeploy_on_push: true\n  push_secret: ${PROJECT_SHOP_PUSH_SECRET}\n" in hidden
    assert f"  redeploy_on_push: true\n  push_secret: {SECRET}\n" in clear

    # applying the same file again changes nothing; a new secret is sealed in its place
    configure(runtime, tmp_path, repo=web)
    (same,) = rows(runtime, Project)
    assert same.push_secret_enc == project.push_secret_enc
    configure(runtime, tmp_path, repo=web, push_secret="rotated-Zq7")
    (rotated,) = rows(runtime, Project)
    assert runtime.box.open(rotated.push_secret_enc or "") == "rotated-Zq7"
    order_id = on_test(runtime)
    fixed = commit(web, BRANCH, {"src/fix.html": "<p>fixed</p>\n"})
    with pytest.raises(PermissionDenied):
        push_hook(runtime, *github_delivery(BRANCH, "0" * 40, fixed))
    assert push_hook(runtime, *github_delivery(BRANCH, "0" * 40, fixed,
                                               secret="rotated-Zq7")).deployments
    assert state(runtime, order_id) == "test:deploying"
    configure(runtime, tmp_path, repo=web, push_secret="")
    assert rows(runtime, Project)[0].push_secret_enc is None
