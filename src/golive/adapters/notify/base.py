"""What every notification channel shares: the message, the channel's settings, the answer.

An adapter turns a ``Message`` into its vendor's request, sends it and reads the vendor's
answer into an ``Answer``; network errors, HTTP errors and vendor error codes all become
an ``Answer`` (nothing is raised). Secrets — the webhook URL, which carries the access
token, the signing secret, the SMTP password — never appear in an ``Answer``.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

BODY_LIMIT = 2000
MASK = "***"


@dataclass(frozen=True)
class Mentions:
    """Who to mention. Each channel reads the fields its vendor understands."""

    mobiles: tuple[str, ...] = ()     # phone numbers (WeCom, DingTalk)
    user_ids: tuple[str, ...] = ()    # the vendor's user ids for THIS channel type
    emails: tuple[str, ...] = ()      # for e-mail: extra recipients (Cc)


@dataclass(frozen=True)
class Message:
    title: str                        # one line, e.g. "[shop] order #7 deployed on test"
    markdown: str                     # the body in Markdown (WeCom/DingTalk/Feishu/Slack text)
    text: str                         # the same as plain text (e-mail text part, fallbacks)
    html: str                         # the same as HTML (e-mail HTML part)
    link: str = ""                    # the order page
    mentions: Mentions = Mentions()
    event: str = ""                   # e.g. "deploy_succeeded"
    data: Mapping[str, Any] = field(default_factory=dict)  # the generic webhook's JSON fields


@dataclass(frozen=True)
class ChannelConfig:
    type: str                         # wecom | dingtalk | feishu | slack | webhook | email
    name: str = ""
    webhook: str = ""                 # the robot / webhook URL (a secret)
    secret: str = ""                  # signing secret (dingtalk, feishu, webhook)
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: str = "starttls"        # starttls | tls | none
    mail_from: str = ""
    to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    ok: bool
    status: int | None                # HTTP status (or SMTP reply code); None: no answer
    body: str                         # the vendor's answer, at most 2000 characters, masked
    retryable: bool                   # network errors, timeouts, 429, 5xx, "too many requests"
    retry_after: float | None = None  # seconds, when the vendor said (Retry-After header)
    error: str = ""                   # one line for people


def title_line(title: str) -> str:
    """The first line of a title (a title is one line: it goes into headers and headings)."""
    lines = title.strip().splitlines()
    return lines[0].strip() if lines else ""


def clip_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (whole characters), marked with "…"."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def with_link(markdown: str, link: str) -> str:
    """The body with the order page's link appended (unless the body already has it)."""
    if not link or link in markdown:
        return markdown
    return f"{markdown.rstrip()}\n\n[{link}]({link})" if markdown.strip() else f"[{link}]({link})"


def secrets_of(channel: ChannelConfig) -> list[str]:
    """The texts to mask in anything shown: the URL, its token-like parts, the secrets."""
    found = [channel.webhook, channel.secret, channel.smtp_password]
    if channel.webhook:
        parts = urlsplit(channel.webhook)
        found.append(parts._replace(query="", fragment="").geturl())
        found += [value for _, value in parse_qsl(parts.query)]
        found += [unquote(piece) for piece in parts.path.split("/") if len(piece) >= 12]
        found += [piece for piece in parts.path.split("/") if len(piece) >= 12]
        if parts.password:
            found.append(parts.password)
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def shown(text: str, secrets: Iterable[str], limit: int = BODY_LIMIT) -> str:
    """Vendor text fit for an ``Answer``: secrets masked, at most ``limit`` characters."""
    text = mask(text, secrets)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: str, limit: int = 300) -> str:
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def retry_after(value: str | None, now: Callable[[], float]) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:  # pragma: no cover - older Pythons
            return None
        seconds = when.timestamp() - now()
    return max(0.0, seconds)


def network_error(error: Exception) -> str:
    """A short description of an httpx transport error (no URL in it)."""
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    text = str(error)
    if "refused" in text.lower():
        return "connection refused"
    return one_line(text) or type(error).__name__


@dataclass(frozen=True)
class Reply:
    """The HTTP answer of a vendor, read once (text and, if it is JSON, the object)."""

    status: int
    text: str
    json: Any
    retry_after: float | None


def post(channel: ChannelConfig, url: str, *, client: httpx.Client | None, timeout: float,
         now: Callable[[], float], content: bytes,
         headers: Mapping[str, str] | None = None) -> Reply | Answer:
    """POST ``content`` (JSON) to ``url``: the vendor's reply, or an ``Answer`` when there was
    none (network error: retryable, status None)."""
    secrets = secrets_of(channel)
    sent_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    try:
        if client is None:
            with httpx.Client(timeout=timeout, follow_redirects=False) as own:
                response = own.post(url, content=content, headers=sent_headers)
        else:
            response = client.post(url, content=content, headers=sent_headers, timeout=timeout)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:  # a setting, not a fault
        return Answer(ok=False, status=None, body="", retryable=False,
                      error=shown(f"{channel.type}: {one_line(str(error))}", secrets, 300))
    except httpx.TransportError as error:
        return Answer(ok=False, status=None, body="", retryable=True,
                      error=shown(f"{channel.type}: {network_error(error)}", secrets, 300))
    except httpx.HTTPError as error:  # a request httpx could not make at all
        return Answer(ok=False, status=None, body="", retryable=False,
                      error=shown(f"{channel.type}: {one_line(str(error))}", secrets, 300))
    text = response.text
    try:
        parsed: Any = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    return Reply(status=response.status_code, text=text, json=parsed,
                 retry_after=retry_after(response.headers.get("Retry-After"), now))


def http_failure(channel: ChannelConfig, reply: Reply, detail: str = "") -> Answer:
    """An answer for a non-2xx HTTP status: 429 and 5xx are retryable."""
    secrets = secrets_of(channel)
    retryable = reply.status == 429 or reply.status >= 500
    what = detail or one_line(reply.text, 200)
    error = f"{channel.type}: HTTP {reply.status}" + (f" {what}" if what else "")
    return Answer(ok=False, status=reply.status, body=shown(reply.text, secrets),
                  retryable=retryable, retry_after=reply.retry_after,
                  error=shown(one_line(error), secrets, 300))


def coded_answer(channel: ChannelConfig, reply: Reply, code: Any, message: Any,
                 retryable_codes: frozenset[int]) -> Answer:
    """An answer for a vendor's JSON reply with an error code (0: success)."""
    secrets = secrets_of(channel)
    body = shown(reply.text, secrets)
    if code == 0 and 200 <= reply.status < 300:
        return Answer(ok=True, status=reply.status, body=body, retryable=False)
    retryable = (isinstance(code, int) and code in retryable_codes) or reply.status == 429 \
        or reply.status >= 500
    error = one_line(f"{channel.type}: {code} {message if message is not None else ''}")
    return Answer(ok=False, status=reply.status, body=body, retryable=retryable,
                  retry_after=reply.retry_after, error=shown(error, secrets, 300))


def unexpected(channel: ChannelConfig, reply: Reply) -> Answer:
    """A 2xx reply the adapter cannot read: not retried (the message may have arrived)."""
    secrets = secrets_of(channel)
    return Answer(ok=False, status=reply.status, body=shown(reply.text, secrets),
                  retryable=False,
                  error=shown(f"{channel.type}: unexpected answer: "
                              f"{one_line(reply.text, 200) or '(empty)'}", secrets, 300))


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def read_coded(channel: ChannelConfig, reply: Reply, code_keys: tuple[str, ...],
               message_keys: tuple[str, ...], retryable_codes: frozenset[int]) -> Answer:
    """Read a vendor reply of the form ``{"<code>": 0, "<message>": "ok"}`` (any status)."""
    if isinstance(reply.json, dict):
        for key, message_key in zip(code_keys, message_keys, strict=True):
            if key in reply.json:
                return coded_answer(channel, reply, reply.json[key], reply.json.get(message_key),
                                    retryable_codes)
    if not 200 <= reply.status < 300:
        return http_failure(channel, reply)
    return unexpected(channel, reply)
