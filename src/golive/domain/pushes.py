"""Git push webhooks: is a request really from the git host, and what did it push?

One URL per project and provider (``/api/v1/hooks/{provider}/{project}``), and one secret
per project, checked the way each provider documents it:

* ``github`` — ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>``,
  event in ``X-GitHub-Event`` (``push``).
* ``gitea`` — ``X-Gitea-Signature: <hex HMAC-SHA256(secret, raw body)>``, event in
  ``X-Gitea-Event`` (``push``).
* ``gitlab`` — ``X-Gitlab-Token: <the secret itself>``, event in ``X-Gitlab-Event``
  (``Push Hook``; ``System Hook`` with ``object_kind: push`` from a system hook).
* ``gitee`` — ``X-Gitee-Token`` is the WebHook password itself, or (signature mode) the
  Base64 of HMAC-SHA256(key=secret, msg=``"<X-Gitee-Timestamp>\\n<secret>"``), the
  timestamp in milliseconds and no more than an hour away; event in ``X-Gitee-Event``
  (``Push Hook``).

Only GitHub's and Gitea's signatures cover the body: GitLab's token and Gitee's password
or signature prove who sent the request, not that its body is intact (TLS does that).

Every comparison is constant-time. Nothing here does I/O; headers are given with
lower-case names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from golive.errors import InputError, NotFound

PROVIDERS = ("github", "gitlab", "gitee", "gitea")
GITEE_MAX_SKEW = 3600.0
"""Seconds a Gitee signature's timestamp may be away from now (its documented limit)."""
ZERO_SHA = re.compile(r"^0+$")
SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
BRANCH_PREFIX = "refs/heads/"


@dataclass(frozen=True)
class Push:
    """A push to a branch: its name, the heads before and after, who pushed, and whether
    the push deleted the branch."""

    branch: str
    before: str
    after: str
    pusher: str
    deleted: bool


def check_provider(provider: str) -> str:
    """``provider`` when golive knows it; NotFound otherwise."""
    if provider not in PROVIDERS:
        raise NotFound("push webhook provider", f"{provider!r} (known: {', '.join(PROVIDERS)})")
    return provider


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def gitee_signature(secret: str, timestamp: str) -> str:
    """What Gitee sends in ``X-Gitee-Token`` in signature mode (without its URL encoding)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def github_signature(secret: str, body: bytes) -> str:
    """What GitHub sends in ``X-Hub-Signature-256``."""
    return "sha256=" + _hex_hmac(secret, body)


def gitea_signature(secret: str, body: bytes) -> str:
    """What Gitea sends in ``X-Gitea-Signature``."""
    return _hex_hmac(secret, body)


def verify(provider: str, headers: Mapping[str, str], body: bytes, secret: str,
           now: float) -> str:
    """"" when the request carries the provider's proof of ``secret``, else why not (never
    quoting the secret or the expected value). ``now``: seconds since the epoch."""
    check_provider(provider)
    if not secret:
        return "the project has no push secret"
    if provider == "github":
        return _verify_hex(headers, "X-Hub-Signature-256", "sha256=", secret, body)
    if provider == "gitea":
        return _verify_hex(headers, "X-Gitea-Signature", "", secret, body)
    if provider == "gitlab":
        token = headers.get("x-gitlab-token", "")
        if not token:
            return "the X-Gitlab-Token header is missing"
        return "" if _same(token, secret) else "the X-Gitlab-Token header is not the secret"
    return _verify_gitee(headers, secret, now)


def _verify_hex(headers: Mapping[str, str], shown: str, prefix: str, secret: str,
                body: bytes) -> str:
    given = headers.get(shown.lower(), "").strip()
    if not given:
        return f"the {shown} header is missing"
    if prefix:
        if not given.startswith(prefix):
            return f"the {shown} header is not {prefix}<hex>"
        given = given[len(prefix):]
    if _same(given.lower(), _hex_hmac(secret, body)):
        return ""
    return f"the {shown} header does not match the body signed with the secret"


def _verify_gitee(headers: Mapping[str, str], secret: str, now: float) -> str:
    token = headers.get("x-gitee-token", "").strip()
    if not token:
        return "the X-Gitee-Token header is missing"
    if _same(token, secret):  # password mode
        return ""
    stamp = headers.get("x-gitee-timestamp", "").strip()
    if not stamp:
        return ("the X-Gitee-Token header is not the password, and there is no "
                "X-Gitee-Timestamp to check it as a signature")
    if not stamp.isdigit():
        return "the X-Gitee-Timestamp header is not a number of milliseconds"
    given = unquote(token) if "%" in token else token
    if not _same(given, gitee_signature(secret, stamp)):
        return "the X-Gitee-Token header is neither the password nor the signature"
    if abs(now - int(stamp) / 1000) > GITEE_MAX_SKEW:
        return "the X-Gitee-Timestamp header is more than an hour away from now"
    return ""


def event_of(provider: str, headers: Mapping[str, str]) -> str:
    """The event the provider's header names ("" when absent)."""
    name = {"github": "x-github-event", "gitea": "x-gitea-event",
            "gitlab": "x-gitlab-event", "gitee": "x-gitee-event"}[check_provider(provider)]
    return headers.get(name, "").strip()


def _is_push(provider: str, event: str, payload: Mapping[str, Any]) -> bool:
    if provider in ("github", "gitea"):
        return event == "push"
    if provider == "gitlab":
        return event in ("Push Hook", "System Hook") and payload.get("object_kind") == "push"
    return event == "Push Hook" and payload.get("hook_name", "push_hooks") == "push_hooks"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _pusher(provider: str, payload: Mapping[str, Any]) -> str:
    if provider == "gitlab":
        return _text(payload.get("user_username")) or _text(payload.get("user_name"))
    found: list[str] = []
    for key in ("pusher", "sender", "user"):
        who = payload.get(key)
        if isinstance(who, Mapping):
            found += [_text(who.get(f)) for f in ("username", "login", "name")]
    found.append(_text(payload.get("user_name")))
    return next((name for name in found if name), "")


def parse_push(provider: str, headers: Mapping[str, str], payload: Any) -> Push | None:
    """The push a verified request reports; None when it is another event (a ping, a tag
    push, a merge request). InputError when a push event lacks its ref or commits."""
    event = event_of(provider, headers)
    if not isinstance(payload, Mapping):
        raise InputError("the webhook body is not a JSON object")
    if not _is_push(provider, event, payload):
        return None
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref:
        raise InputError(f"the {provider} push event has no ref")
    if not ref.startswith(BRANCH_PREFIX) or len(ref) == len(BRANCH_PREFIX):
        return None  # a tag or another kind of ref
    before, after = _text(payload.get("before")), _text(payload.get("after"))
    for name, sha in (("before", before), ("after", after)):
        if not SHA.match(sha):
            raise InputError(f"the {provider} push event's {name} is not a commit id")
    deleted = payload.get("deleted") is True or bool(ZERO_SHA.match(after))
    return Push(branch=ref[len(BRANCH_PREFIX):], before=before.lower(), after=after.lower(),
                pusher=_pusher(provider, payload)[:100], deleted=deleted)
