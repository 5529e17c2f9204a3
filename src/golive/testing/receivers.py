"""Real HTTP servers on 127.0.0.1 that play the vendors' chat robots, and an SMTP receiver.

::

    with robot("dingtalk", secret="SEC123") as r:
        send(ChannelConfig(type="dingtalk", webhook=r.url, secret="SEC123"), message)
        r.received[-1]["json"]["markdown"]["text"]      # every request, accepted or not
        r.messages                                      # the JSON of the accepted ones
        r.fail_next(2, "rate_limit")                    # the vendor's "too fast" answer twice

    with smtp_receiver(user="u", password="p") as mail:  # AUTH LOGIN/PLAIN offered, required
        ...  mail.port, mail.messages[-1]["Subject"], mail.envelopes[-1].rcpt_tos

Each robot checks what its vendor checks, the way the vendor documents it: the access
token in the URL, the signature (DingTalk: ``timestamp`` in ms within an hour and ``sign``
in the query; Feishu: ``timestamp`` in s within an hour and ``sign`` in the body; the
generic webhook: ``X-Golive-Signature`` over ``f"{timestamp}.{body}"`` within 5 minutes)
and the JSON shape of the message, and answers with the vendor's codes.

``fail_next(n, failure)`` makes the next ``n`` requests (with a valid token) fail with:
``"rate_limit"`` (DingTalk 130101, WeCom 45009, Feishu 11232, Slack and webhook HTTP 429
with Retry-After), ``"http_429"`` (HTTP 429 with Retry-After everywhere), ``"http_500"``
(HTTP 500 whose body echoes the request's path and query, as careless proxies do) or
``"bad_sign"`` (the vendor's signature error; not for WeCom and Slack, which do not sign).

The servers run in threads and are stopped, and their sockets closed, on leaving the
``with`` block.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

ROBOTS = ("dingtalk", "wecom", "feishu", "slack", "webhook")
FAILURES = ("rate_limit", "http_429", "http_500", "bad_sign")
HOUR = 3600

Reply = tuple[int, dict[str, str], bytes]


def _json(payload: Any, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def _text(text: str, status: int) -> Reply:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode()


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


class Robot:
    """One vendor robot. ``url`` is its webhook URL (with the access token)."""

    def __init__(self, kind: str, secret: str, token: str, *, legacy: bool,
                 clock: Callable[[], float], retry_after: str) -> None:
        if kind not in ROBOTS:
            raise ValueError(f"unknown robot {kind!r}; one of {', '.join(ROBOTS)}")
        self.kind = kind
        self.secret = secret
        self.token = token
        self.legacy = legacy
        self.clock = clock
        self.retry_after = retry_after
        self.received: list[dict[str, Any]] = []
        self.url = ""
        self._failures: list[str] = []
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The webhook's path and query, as the vendor shapes it."""
        return {
            "dingtalk": f"/robot/send?access_token={self.token}",
            "wecom": f"/cgi-bin/webhook/send?key={self.token}",
            "feishu": f"/open-apis/bot/v2/hook/{self.token}",
            "slack": f"/services/T0GOLIVE/B0GOLIVE/{self.token}",
            "webhook": f"/hooks/{self.token}",
        }[self.kind]

    @property
    def messages(self) -> list[Any]:
        """The JSON bodies of the requests the robot accepted."""
        with self._lock:
            return [record["json"] for record in self.received if record["accepted"]]

    def fail_next(self, count: int, failure: str, *, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``failure`` (see the module's doc)."""
        if failure not in FAILURES:
            raise ValueError(f"unknown failure {failure!r}; one of {', '.join(FAILURES)}")
        if failure == "bad_sign" and self.kind in ("wecom", "slack"):
            raise ValueError(f"{self.kind} robots do not sign requests")
        with self._lock:
            self._failures += [failure] * count
            if retry_after is not None:
                self.retry_after = retry_after

    # -- one request --------------------------------------------------------------------------

    def handle(self, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            body: Any = json.loads(raw.decode())
        except ValueError:
            body = None
        record: dict[str, Any] = {"path": parts.path, "query": query, "headers": headers,
                                  "json": body, "body": raw.decode(errors="replace"),
                                  "accepted": False, "status": 0}
        reply = self._answer(parts.path, query, headers, raw, body, target)
        status, _, answer = reply
        record["status"] = status
        record["answer"] = answer.decode(errors="replace")
        record["accepted"] = status == 200 and self._success(answer)
        with self._lock:
            self.received.append(record)
        return reply

    def _success(self, answer: bytes) -> bool:
        if self.kind in ("slack", "webhook"):
            return True
        parsed = json.loads(answer)
        return bool(parsed.get("errcode", parsed.get("code", parsed.get("StatusCode"))) == 0)

    def _answer(self, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes,
                body: Any, target: str) -> Reply:
        own = urlsplit(self.path)
        if path != own.path or dict(parse_qsl(own.query)).items() - query.items():
            return self._bad_token()
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return self._forced(failure, target)
        problem = self._signature_problem(query, headers, raw, body)
        if problem is not None:
            return problem
        return self._shape_problem(body) or self._ok()

    def _vendor(self, code: int, message: str) -> Reply:
        if self.kind in ("dingtalk", "wecom"):
            return _json({"errcode": code, "errmsg": message})
        if self.legacy:
            return _json({"Extra": None, "StatusCode": code, "StatusMessage": message})
        return _json({"code": code, "data": {}, "msg": message})

    def _ok(self) -> Reply:
        if self.kind == "slack":
            return _text("ok", 200)
        if self.kind == "webhook":
            return _json({"ok": True})
        if self.kind == "feishu" and not self.legacy:
            return _json({"code": 0, "data": {}, "msg": "success"})
        return self._vendor(0, "success" if self.kind == "feishu" else "ok")

    def _bad_token(self) -> Reply:
        if self.kind == "dingtalk":
            return self._vendor(300001, "token is not exist")
        if self.kind == "wecom":
            return self._vendor(93000, "invalid webhook url, hint: [golive test robot]")
        if self.kind == "feishu":
            return self._vendor(19001, "param invalid: incoming webhook access token invalid")
        return _text("no_service", 404)

    def _too_many(self) -> Reply:
        status, headers, body = _text("rate_limited", 429)
        return status, {**headers, "Retry-After": self.retry_after}, body

    def _forced(self, failure: str, target: str) -> Reply:
        if failure == "http_500":
            return _text(f"internal error while handling POST {target}", 500)
        if failure == "http_429":
            return self._too_many()
        if failure == "rate_limit":
            if self.kind == "dingtalk":
                return self._vendor(130101, "send too fast, exceed 20 times per minute")
            if self.kind == "wecom":
                return self._vendor(45009, "api freq out of limit, hint: [golive test robot]")
            if self.kind == "feishu":
                return self._vendor(11232, "frequency limited psm[lark.oapi.app_platform_runtime]")
            return self._too_many()
        return self._bad_sign("sign not match")

    def _bad_sign(self, why: str) -> Reply:
        if self.kind == "dingtalk":
            return self._vendor(310000, f"{why}, more: [https://open.dingtalk.com/document/robots]")
        if self.kind == "feishu":
            return self._vendor(
                19021, "sign match fail or timestamp is not within one hour from current time")
        return _json({"error": f"bad signature: {why}"}, 401)

    def _signature_problem(self, query: dict[str, str], headers: dict[str, str], raw: bytes,
                           body: Any) -> Reply | None:
        if not self.secret or self.kind in ("wecom", "slack"):
            return None
        now = self.clock()
        if self.kind == "dingtalk":
            stamp, sign = query.get("timestamp", ""), query.get("sign", "")
            if not stamp.isdigit() or not sign:
                return self._bad_sign("sign not match")
            if abs(now * 1000 - int(stamp)) > HOUR * 1000:
                return self._bad_sign("invalid timestamp")
            digest = hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(),
                              hashlib.sha256).digest()
            ok = hmac.compare_digest(base64.b64encode(digest).decode(), sign)
            return None if ok else self._bad_sign("sign not match")
        if self.kind == "feishu":
            if not isinstance(body, dict):
                return None  # the shape check answers
            stamp, sign = str(body.get("timestamp", "")), body.get("sign", "")
            if not stamp.isdigit() or not isinstance(sign, str) or \
                    abs(now - int(stamp)) > HOUR:
                return self._bad_sign("sign match fail")
            key = f"{stamp}\n{self.secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            return None if hmac.compare_digest(expected, sign) else self._bad_sign("sign")
        stamp = headers.get("x-golive-timestamp", "")
        given = headers.get("x-golive-signature", "")
        if not stamp.isdigit() or abs(now - int(stamp)) > 300:
            return self._bad_sign("timestamp missing or not within 5 minutes")
        expected = "sha256=" + hmac.new(self.secret.encode(), f"{stamp}.".encode() + raw,
                                        hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, given) else self._bad_sign("mismatch")

    def _shape_problem(self, body: Any) -> Reply | None:
        problem = {"dingtalk": _dingtalk_shape, "wecom": _wecom_shape, "feishu": _feishu_shape,
                   "slack": _slack_shape, "webhook": _webhook_shape}[self.kind](body)
        if problem is None:
            return None
        if self.kind == "dingtalk":
            return self._vendor(40035, f"缺少参数 {problem}")
        if self.kind == "wecom":
            return self._vendor(40008 if "msgtype" in problem else 44004,
                                f"invalid message: {problem}")
        if self.kind == "feishu":
            return self._vendor(9499, f"Bad Request: {problem}")
        if self.kind == "slack":
            return _text("invalid_blocks" if "block" in problem else "invalid_payload", 400)
        return _json({"error": problem}, 400)


def _dingtalk_shape(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "json"
    kind = body.get("msgtype")
    if kind == "text":
        return None if _nonempty((body.get("text") or {}).get("content")) else "text.content"
    if kind != "markdown":
        return "msgtype"
    markdown = body.get("markdown")
    if not isinstance(markdown, dict) or not _nonempty(markdown.get("title")):
        return "markdown.title"
    if not _nonempty(markdown.get("text")) or len(markdown["text"].encode()) > 20000:
        return "markdown.text"
    at = body.get("at", {})
    if not isinstance(at, dict) or not _is_str_list(at.get("atMobiles", [])) or \
            not _is_str_list(at.get("atUserIds", [])) or \
            not isinstance(at.get("isAtAll", False), bool):
        return "at"
    return None


def _wecom_shape(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("msgtype") not in ("text", "markdown"):
        return "msgtype"
    part = body.get(body["msgtype"])
    if not isinstance(part, dict) or not _nonempty(part.get("content")):
        return "empty content"
    if len(part["content"].encode()) > 4096:
        return "content exceeds 4096 bytes"
    for key in ("mentioned_list", "mentioned_mobile_list"):
        if not _is_str_list(part.get(key, [])):
            return key
    return None


def _feishu_shape(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "json"
    kind = body.get("msg_type")
    if kind == "text":
        return None if _nonempty((body.get("content") or {}).get("text")) else "content.text"
    if kind == "post":
        post = (body.get("content") or {}).get("post")
        return None if isinstance(post, dict) and post else "content.post"
    if kind != "interactive":
        return "msg_type"
    card = body.get("card")
    if not isinstance(card, dict) or not isinstance(card.get("elements"), list):
        return "card.elements"
    for element in card["elements"]:
        if not isinstance(element, dict) or not _nonempty(element.get("tag")):
            return "card.elements[].tag"
        if element["tag"] == "markdown" and not _nonempty(element.get("content")):
            return "markdown.content"
    header = card.get("header")
    if header is not None:
        title = header.get("title") if isinstance(header, dict) else None
        if not isinstance(title, dict) or not _nonempty(title.get("content")):
            return "card.header.title"
    return None


def _slack_shape(body: Any) -> str | None:
    if not isinstance(body, dict) or not (_nonempty(body.get("text")) or body.get("blocks")):
        return "no text"
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "blocks"
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in ("header", "section",
                                                                    "context", "divider"):
            return "block type"
        text = block.get("text")
        if block["type"] == "header" and (not isinstance(text, dict)
                                          or text.get("type") != "plain_text"
                                          or not 0 < len(text.get("text", "")) <= 150):
            return "header block"
        if block["type"] == "section" and (not isinstance(text, dict)
                                           or not 0 < len(text.get("text", "")) <= 3000):
            return "section block"
    return None


def _webhook_shape(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "a JSON object is expected"
    for key in ("event", "title", "text", "link"):
        if not isinstance(body.get(key), str):
            return f"{key} is missing"
    mentions = body.get("mentions")
    if not isinstance(mentions, dict) or not all(
            _is_str_list(mentions.get(key)) for key in ("mobiles", "user_ids", "emails")):
        return "mentions"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, extra, body = self.server.robot.handle(self.path, headers, raw)
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    robot: Robot


@contextmanager
def robot(kind: str, secret: str = "", *, token: str | None = None, legacy: bool = False,
          clock: Callable[[], float] = time.time, retry_after: str = "3") -> Iterator[Robot]:
    """A running robot of ``kind`` (dingtalk, wecom, feishu, slack, webhook) on 127.0.0.1.

    ``secret``: the robot checks signatures (DingTalk, Feishu, webhook). ``legacy``: Feishu
    answers in its older ``StatusCode`` form. ``clock``: the robot's idea of now.
    ``retry_after``: the Retry-After header of its 429 answers."""
    fake = Robot(kind, secret, token or secrets.token_hex(16), legacy=legacy, clock=clock,
                 retry_after=retry_after)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.robot = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}{fake.path}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"golive-{kind}-robot", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- SMTP --------------------------------------------------------------------------------------


@dataclass
class SmtpReceiver:
    """What the SMTP receiver got: ``messages`` (parsed), ``envelopes``, ``logins``."""

    host: str = "127.0.0.1"
    port: int = 0
    user: str | None = None
    password: str | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    _failures: list[str] = field(default_factory=list)

    def fail_next(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer DATA of the next ``count`` messages with ``reply`` (an SMTP reply line)."""
        self._failures += [reply] * count

    # aiosmtpd handler hooks (run on the controller's event loop thread)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, mail_options: list[str]) -> str:
        if self.user is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        if self._failures:
            return self._failures.pop(0)
        content = envelope.original_content or b""
        parsed = BytesParser(policy=email.policy.default).parsebytes(content)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append(envelope)
        return "250 OK: queued"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if login == self.user and password == self.password:
            self.logins.append(f"{mechanism}:{login}")
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class _BoundController(Controller):
    """aiosmtpd's Controller on a socket bound beforehand (port 0: no race for a port)."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)
        self._sock = sock

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock,
                                       ssl=self.ssl_context)


@contextmanager
def smtp_receiver(*, user: str | None = None, password: str | None = None,
                  receiver: SmtpReceiver | None = None, **options: Any,
                  ) -> Iterator[SmtpReceiver]:
    """A running SMTP server on 127.0.0.1 (plain by default) collecting what it receives.

    With ``user``/``password`` (or a ``receiver`` that has them) it offers AUTH LOGIN and
    PLAIN and refuses MAIL FROM before a successful login (530). ``receiver``: an
    ``SmtpReceiver`` (subclass) to serve; ``options``: more aiosmtpd ``Controller``
    options, e.g. ``tls_context`` + ``require_starttls`` or ``ssl_context`` for TLS."""
    receiver = receiver or SmtpReceiver(user=user, password=password)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    receiver.port = sock.getsockname()[1]
    kwargs: dict[str, Any] = {"server_hostname": "golive-smtp.localhost", "ready_timeout": 10}
    if receiver.user is not None:
        kwargs.update(authenticator=receiver.authenticate, auth_require_tls=False,
                      auth_required=False)
    kwargs.update(options)
    controller = _BoundController(receiver, sock, **kwargs)
    try:
        controller.start()
    except BaseException:
        sock.close()
        if controller.loop.is_running():  # pragma: no cover - start failed half-way
            controller.stop(no_assert=True)
        elif not controller.loop.is_closed():
            controller.loop.close()
        raise
    try:
        yield receiver
    finally:
        controller.stop()
