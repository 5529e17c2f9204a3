"""Push webhooks as the git hosts send them: each provider's token or signature (valid,
wrong secret, missing header, tampered body, Gitee's timestamps) and the push read from
real-looking payloads. The expected signatures are computed here from the providers'
documented algorithms, not with golive's helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from golive.domain.pushes import Push, parse_push, verify
from golive.errors import InputError, NotFound

SECRET = "s3cret-Push-Zq9"
NOW = 1_760_000_000.0  # seconds since the epoch
BODY = json.dumps({"ref": "refs/heads/feature/x", "after": "b" * 40}).encode()
TAMPERED = BODY.replace(b"feature/x", b"feature/y")
OLD, NEW = "a1" * 20, "b2" * 20
ZERO = "0" * 40


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def gitee_sign(secret: str, millis: int) -> str:
    string_to_sign = f"{millis}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed(provider: str, secret: str, body: bytes, now: float = NOW) -> dict[str, str]:
    """The headers ``provider`` sends with ``body`` for a webhook whose secret is ``secret``."""
    if provider == "github":
        return {"x-github-event": "push",
                "x-hub-signature-256": "sha256=" + hex_hmac(secret, body)}
    if provider == "gitea":
        return {"x-gitea-event": "push", "x-gitea-signature": hex_hmac(secret, body)}
    if provider == "gitlab":
        return {"x-gitlab-event": "Push Hook", "x-gitlab-token": secret}
    millis = int(now * 1000)
    return {"x-gitee-event": "Push Hook", "x-gitee-timestamp": str(millis),
            "x-gitee-token": gitee_sign(secret, millis)}


PROVIDERS = ["github", "gitea", "gitlab", "gitee"]
PROOF_HEADER = {"github": "x-hub-signature-256", "gitea": "x-gitea-signature",
                "gitlab": "x-gitlab-token", "gitee": "x-gitee-token"}


# --- verify -----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_request_signed_with_the_secret_is_valid(provider: str) -> None:
    assert verify(provider, signed(provider, SECRET, BODY), BODY, SECRET, NOW) == ""


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_request_signed_with_another_secret_is_refused(provider: str) -> None:
    reason = verify(provider, signed(provider, "not-the-secret", BODY), BODY, SECRET, NOW)
    assert reason
    assert SECRET not in reason and "not-the-secret" not in reason


@pytest.mark.parametrize(("provider", "header_name"), [
    ("github", "X-Hub-Signature-256"), ("gitea", "X-Gitea-Signature"),
    ("gitlab", "X-Gitlab-Token"), ("gitee", "X-Gitee-Token")])
def test_a_request_without_its_proof_is_refused_naming_the_header(
        provider: str, header_name: str) -> None:
    headers = signed(provider, SECRET, BODY)
    del headers[PROOF_HEADER[provider]]
    assert verify(provider, headers, BODY, SECRET, NOW) == (
        f"the {header_name} header is missing")


@pytest.mark.parametrize(("provider", "refused"), [
    ("github", True), ("gitea", True),
    # GitLab's token and Gitee's password or signature do not cover the body
    ("gitlab", False), ("gitee", False)])
def test_a_tampered_body_is_refused_where_the_signature_covers_it(
        provider: str, refused: bool) -> None:
    reason = verify(provider, signed(provider, SECRET, BODY), TAMPERED, SECRET, NOW)
    assert bool(reason) is refused
    if refused:
        assert "does not match the body" in reason


def test_githubs_documented_test_vector() -> None:
    # docs.github.com, "Validating webhook deliveries": secret and payload of its example
    headers = {"x-hub-signature-256":
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    assert verify("github", headers, b"Hello, World!", "It's a Secret to Everybody", NOW) == ""
    assert verify("github", headers, b"Hello, World?", "It's a Secret to Everybody", NOW)


def test_a_github_signature_without_its_scheme_is_refused() -> None:
    headers = {"x-hub-signature-256": hex_hmac(SECRET, BODY)}
    assert verify("github", headers, BODY, SECRET, NOW) == (
        "the X-Hub-Signature-256 header is not sha256=<hex>")


def test_gitee_password_mode() -> None:
    headers = {"x-gitee-event": "Push Hook", "x-gitee-token": SECRET,
               "x-gitee-timestamp": str(int(NOW * 1000))}
    assert verify("gitee", headers, BODY, SECRET, NOW) == ""
    headers["x-gitee-token"] = SECRET + "x"
    assert verify("gitee", headers, BODY, SECRET, NOW) == (
        "the X-Gitee-Token header is neither the password nor the signature")


@pytest.mark.parametrize(("age", "valid"), [
    (0, True), (3599, True), (-3599, True),   # within the hour Gitee allows
    (3601, False), (86_400, False), (-3601, False)])
def test_gitee_signature_timestamps(age: float, valid: bool) -> None:
    headers = signed("gitee", SECRET, BODY, now=NOW - age)
    reason = verify("gitee", headers, BODY, SECRET, NOW)
    if valid:
        assert reason == ""
    else:
        assert reason == "the X-Gitee-Timestamp header is more than an hour away from now"


def test_an_old_gitee_signature_with_a_new_timestamp_is_refused() -> None:
    headers = signed("gitee", SECRET, BODY, now=NOW - 7200)
    headers["x-gitee-timestamp"] = str(int(NOW * 1000))  # replayed with a fresh stamp
    assert verify("gitee", headers, BODY, SECRET, NOW) == (
        "the X-Gitee-Token header is neither the password nor the signature")


def test_a_url_encoded_gitee_signature_is_accepted() -> None:
    # the documented last step url-encodes the Base64 (+, / and = escaped)
    headers = signed("gitee", SECRET, BODY)
    headers["x-gitee-token"] = quote_plus(headers["x-gitee-token"], safe="")
    assert verify("gitee", headers, BODY, SECRET, NOW) == ""


def test_a_gitee_signature_needs_its_timestamp() -> None:
    headers = signed("gitee", SECRET, BODY)
    del headers["x-gitee-timestamp"]
    assert "X-Gitee-Timestamp" in verify("gitee", headers, BODY, SECRET, NOW)
    headers["x-gitee-timestamp"] = "yesterday"
    assert verify("gitee", headers, BODY, SECRET, NOW) == (
        "the X-Gitee-Timestamp header is not a number of milliseconds")


def test_an_empty_secret_verifies_nothing() -> None:
    assert verify("gitlab", {"x-gitlab-token": ""}, BODY, "", NOW)
    assert verify("github", signed("github", "", BODY), BODY, "", NOW)


@pytest.mark.parametrize("provider", ["bitbucket", "GitHub", ""])
def test_an_unknown_provider_is_not_found(provider: str) -> None:
    with pytest.raises(NotFound, match="github, gitlab, gitee, gitea"):
        verify(provider, {}, BODY, SECRET, NOW)
    with pytest.raises(NotFound):
        parse_push(provider, {}, {})


# --- parse_push: payloads as the providers document them ---------------------------------------


def github_push(**changes: Any) -> dict[str, Any]:
    return {"ref": "refs/heads/feature/x", "before": OLD, "after": NEW, "created": False,
            "deleted": False, "forced": False, "base_ref": None,
            "compare": f"https://github.com/acme/web/compare/{OLD[:12]}...{NEW[:12]}",
            "commits": [{"id": NEW, "message": "fix prices", "distinct": True}],
            "head_commit": {"id": NEW, "message": "fix prices"},
            "repository": {"full_name": "acme/web", "clone_url": "https://github.com/acme/web.git"},
            "pusher": {"name": "alice-gh", "email": "alice@example.com"},
            "sender": {"login": "alice-gh", "id": 1}, **changes}


def gitlab_push(**changes: Any) -> dict[str, Any]:
    return {"object_kind": "push", "event_name": "push", "before": OLD, "after": NEW,
            "ref": "refs/heads/feature/x", "ref_protected": False, "checkout_sha": NEW,
            "user_id": 4, "user_name": "Alice Liddell", "user_username": "alice",
            "project_id": 15, "project": {"path_with_namespace": "acme/web"},
            "commits": [{"id": NEW, "message": "fix prices"}], "total_commits_count": 1,
            **changes}


def gitee_push(**changes: Any) -> dict[str, Any]:
    return {"hook_name": "push_hooks", "password": "", "hook_id": 1,
            "timestamp": "1576754827988", "sign": "", "ref": "refs/heads/feature/x",
            "before": OLD, "after": NEW, "created": False, "deleted": False,
            "compare": f"https://gitee.com/acme/web/compare/{OLD}...{NEW}",
            "commits": [{"id": NEW, "message": "fix prices"}], "head_commit": {"id": NEW},
            "total_commits_count": 1,
            "repository": {"full_name": "acme/web"},
            "pusher": {"name": "爱丽丝", "username": "alice-gitee", "email": "a@example.com"},
            "sender": {"login": "alice-gitee"}, "user_name": "爱丽丝", **changes}


def gitea_push(**changes: Any) -> dict[str, Any]:
    return {"ref": "refs/heads/feature/x", "before": OLD, "after": NEW,
            "compare_url": f"http://localhost:3000/acme/web/compare/{OLD}...{NEW}",
            "commits": [{"id": NEW, "message": "fix prices"}],
            "repository": {"full_name": "acme/web"},
            "pusher": {"id": 1, "login": "alice-tea", "full_name": "Alice",
                       "username": "alice-tea"},
            "sender": {"login": "alice-tea", "username": "alice-tea"}, **changes}


PUSH_EVENT = {"github": {"x-github-event": "push"}, "gitea": {"x-gitea-event": "push"},
              "gitlab": {"x-gitlab-event": "Push Hook"}, "gitee": {"x-gitee-event": "Push Hook"}}


@pytest.mark.parametrize(("provider", "payload", "pusher"), [
    ("github", github_push(), "alice-gh"),
    ("gitlab", gitlab_push(), "alice"),
    ("gitee", gitee_push(), "alice-gitee"),
    ("gitea", gitea_push(), "alice-tea"),
])
def test_a_push_to_a_branch(provider: str, payload: dict[str, Any], pusher: str) -> None:
    assert parse_push(provider, PUSH_EVENT[provider], payload) == Push(
        branch="feature/x", before=OLD, after=NEW, pusher=pusher, deleted=False)


@pytest.mark.parametrize(("provider", "payload"), [
    ("github", github_push(after=ZERO, deleted=True, head_commit=None, commits=[])),
    ("gitlab", gitlab_push(after=ZERO, checkout_sha=None, commits=[], total_commits_count=0)),
    ("gitee", gitee_push(after=ZERO, deleted=True, commits=[])),
    ("gitea", gitea_push(after=ZERO, commits=[])),
])
def test_a_deleted_branch(provider: str, payload: dict[str, Any]) -> None:
    push = parse_push(provider, PUSH_EVENT[provider], payload)
    assert push is not None
    assert (push.branch, push.after, push.deleted) == ("feature/x", ZERO, True)


def test_a_new_branch_is_a_push() -> None:
    push = parse_push("gitee", PUSH_EVENT["gitee"], gitee_push(before=ZERO, created=True))
    assert push is not None and (push.before, push.after, push.deleted) == (ZERO, NEW, False)


def test_a_gitlab_system_hook_push_is_a_push() -> None:
    push = parse_push("gitlab", {"x-gitlab-event": "System Hook"}, gitlab_push())
    assert push is not None and push.branch == "feature/x"


@pytest.mark.parametrize(("provider", "headers", "payload"), [
    ("github", {"x-github-event": "ping"}, {"zen": "Design for failure.", "hook_id": 1}),
    ("github", PUSH_EVENT["github"], github_push(ref="refs/tags/v1.2.0")),
    ("github", {"x-github-event": "pull_request"}, github_push()),
    ("gitlab", {"x-gitlab-event": "Tag Push Hook"},
     gitlab_push(object_kind="tag_push", ref="refs/tags/v1.2.0")),
    ("gitlab", {"x-gitlab-event": "Merge Request Hook"}, {"object_kind": "merge_request"}),
    ("gitlab", {"x-gitlab-event": "System Hook"}, {"object_kind": "tag_push"}),
    ("gitee", {"x-gitee-event": "Tag Push Hook"},
     gitee_push(hook_name="tag_push_hooks", ref="refs/tags/v1.2.0")),
    ("gitee", {"x-gitee-event": "Merge Request Hook"}, {"hook_name": "merge_request_hooks"}),
    ("gitea", {"x-gitea-event": "create"}, {"ref": "feature/x", "ref_type": "branch"}),
    ("gitea", PUSH_EVENT["gitea"], gitea_push(ref="refs/tags/v1.2.0")),
    ("gitea", {}, gitea_push()),  # no event header: not a push
])
def test_other_events_are_not_pushes(provider: str, headers: dict[str, str],
                                     payload: dict[str, Any]) -> None:
    assert parse_push(provider, headers, payload) is None


@pytest.mark.parametrize(("payload", "problem"), [
    ([1, 2], "not a JSON object"),
    ("push", "not a JSON object"),
    (github_push(ref=None), "has no ref"),
    (github_push(after="not-a-sha"), "after is not a commit id"),
    (github_push(before=None), "before is not a commit id"),
])
def test_a_malformed_push_is_bad_input(payload: Any, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_push("github", PUSH_EVENT["github"], payload)
