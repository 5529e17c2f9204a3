"""The notification channels against real robots on 127.0.0.1 (golive.testing.receivers)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

from golive.adapters.notify import (
    Answer,
    ChannelConfig,
    Mentions,
    Message,
    dingtalk,
    feishu,
    send,
    slack,
    webhook,
)
from golive.adapters.notify.base import retry_after
from golive.testing.receivers import Robot, SmtpReceiver, robot, smtp_receiver

MESSAGE = Message(
    title="[shop] order #7 deployed on test",
    markdown="**order #7** deployed on `test`\n\n- api: ok\n- web: ok",
    text="order #7 deployed on test\n\n- api: ok\n- web: ok",
    html="<p><b>order #7</b> deployed on <code>test</code></p>",
    link="https://golive.example.com/orders/7",
    mentions=Mentions(mobiles=("13800000001",), user_ids=("zhangsan",),
                      emails=("lead@example.com",)),
    event="deploy_succeeded",
    data={"order": 7, "stage": "test"},
)
SECRET = "SEC0123456789abcdef"
HTTP_KINDS = ("dingtalk", "wecom", "feishu", "slack", "webhook")
SIGNED_KINDS = ("dingtalk", "feishu", "webhook")


def channel_for(r: Robot, secret: str = "") -> ChannelConfig:
    return ChannelConfig(type=r.kind, name=f"{r.kind}-1", webhook=r.url, secret=secret)


def assert_no_token(r: Robot, answer: Answer) -> None:
    for text in (answer.body, answer.error):
        assert r.token not in text
        assert r.url not in text


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as shared:
        yield shared


# -- shapes ---------------------------------------------------------------------------------


def test_dingtalk_markdown_signed_with_mentions(client: httpx.Client) -> None:
    with robot("dingtalk", secret=SECRET) as r:
        answer = send(channel_for(r, SECRET), MESSAGE, client=client)
        assert answer == Answer(ok=True, status=200, body='{"errcode": 0, "errmsg": "ok"}',
                                retryable=False)
        (sent,) = r.messages
        request = r.received[0]
    assert set(request["query"]) == {"access_token", "timestamp", "sign"}
    assert abs(int(request["query"]["timestamp"]) - time.time() * 1000) < 60_000
    assert sent["msgtype"] == "markdown"
    assert sent["markdown"]["title"] == MESSAGE.title
    assert sent["markdown"]["text"].startswith(MESSAGE.markdown)
    assert MESSAGE.link in sent["markdown"]["text"]
    assert "@13800000001" in sent["markdown"]["text"]
    assert sent["at"] == {"atMobiles": ["13800000001"], "atUserIds": ["zhangsan"],
                          "isAtAll": False}


def test_dingtalk_unsigned() -> None:
    with robot("dingtalk") as r:
        answer = send(channel_for(r), MESSAGE)
        assert answer.ok
        assert set(r.received[0]["query"]) == {"access_token"}


def test_wecom_markdown_with_mentions() -> None:
    with robot("wecom") as r:
        answer = send(channel_for(r), MESSAGE)
        assert answer.ok and answer.status == 200
        (sent,) = r.messages
    assert sent["msgtype"] == "markdown"
    assert set(sent) == {"msgtype", "markdown"}
    content = sent["markdown"]["content"]
    assert MESSAGE.title in content and MESSAGE.markdown in content and MESSAGE.link in content
    assert content.rstrip().endswith("<@zhangsan>")
    assert sent["markdown"]["mentioned_mobile_list"] == ["13800000001"]


def test_wecom_clips_long_content_to_4096_bytes() -> None:
    long = Message(title="t", markdown="部署" * 3000, text="", html="",
                   mentions=Mentions(user_ids=("lisi",)))
    with robot("wecom") as r:
        assert send(channel_for(r), long).ok
        content = r.messages[0]["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.endswith("<@lisi>")


@pytest.mark.parametrize("legacy", [False, True])
def test_feishu_card_signed(legacy: bool) -> None:
    with robot("feishu", secret=SECRET, legacy=legacy) as r:
        answer = send(channel_for(r, SECRET),
                      Message(**{**MESSAGE.__dict__,
                                 "mentions": Mentions(user_ids=("ou_abc123",))}))
        assert answer.ok, answer
        (sent,) = r.messages
    assert sent["msg_type"] == "interactive"
    assert sent["timestamp"].isdigit() and abs(int(sent["timestamp"]) - time.time()) < 60
    assert sent["sign"]
    card = sent["card"]
    assert card["header"]["title"] == {"tag": "plain_text", "content": MESSAGE.title}
    assert card["header"]["template"] == "green"
    (element,) = card["elements"]
    assert element["tag"] == "markdown"
    assert element["content"].startswith(MESSAGE.markdown)
    assert "<at id=ou_abc123></at>" in element["content"]


def test_slack_blocks_with_mentions() -> None:
    with robot("slack") as r:
        answer = send(channel_for(r), Message(**{**MESSAGE.__dict__,
                                                 "mentions": Mentions(user_ids=("U123",))}))
        assert answer == Answer(ok=True, status=200, body="ok", retryable=False)
        (sent,) = r.messages
    assert sent["text"] == f"{MESSAGE.title} <@U123>"
    header, section, context = sent["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": MESSAGE.title}}
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].startswith("*order #7* deployed on `test`\n\n• api: ok")
    assert section["text"]["text"].endswith("<@U123>")
    assert context["elements"][0]["text"] == f"<{MESSAGE.link}>"


def test_slack_mrkdwn() -> None:
    assert slack.mrkdwn("# Title\n**b** and [site](https://x.io) a<b & c\n- item") == \
        "*Title*\n*b* and <https://x.io|site> a&lt;b &amp; c\n• item"


def test_webhook_payload_headers_and_signature() -> None:
    with robot("webhook", secret=SECRET) as r:
        answer = send(channel_for(r, SECRET), MESSAGE, now=lambda: time.time())
        assert answer.ok and answer.status == 200
        (request,) = r.received
    assert request["json"] == {
        "event": "deploy_succeeded", "title": MESSAGE.title, "text": MESSAGE.text,
        "link": MESSAGE.link,
        "mentions": {"mobiles": ["13800000001"], "user_ids": ["zhangsan"],
                     "emails": ["lead@example.com"]},
        "order": 7, "stage": "test",
    }
    headers = request["headers"]
    assert headers["x-golive-event"] == "deploy_succeeded"
    stamp = headers["x-golive-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{stamp}.{request['body']}".encode(),
                        hashlib.sha256).hexdigest()
    assert headers["x-golive-signature"] == f"sha256={expected}"
    assert headers["content-type"].startswith("application/json")


def test_webhook_without_secret_has_no_signature() -> None:
    with robot("webhook") as r:
        assert send(channel_for(r), MESSAGE).ok
        assert "x-golive-signature" not in r.received[0]["headers"]


# -- signatures -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "expected"), [
    ("dingtalk", "dingtalk: 310000 sign not match"),
    ("feishu", "feishu: 19021 sign match fail"),
    ("webhook", "webhook: HTTP 401"),
])
@pytest.mark.parametrize("sent_secret", ["WRONG-secret-value", ""])
def test_wrong_or_missing_secret_is_refused(kind: str, expected: str, sent_secret: str) -> None:
    with robot(kind, secret=SECRET) as r:
        answer = send(channel_for(r, sent_secret), MESSAGE)
        assert r.messages == []
    assert not answer.ok and not answer.retryable
    assert answer.error.startswith(expected)
    assert answer.status in (200, 401)
    assert_no_token(r, answer)
    assert "WRONG-secret-value" not in answer.body + answer.error


@pytest.mark.parametrize("kind", SIGNED_KINDS)
def test_stale_timestamp_is_refused(kind: str) -> None:
    with robot(kind, secret=SECRET) as r:
        answer = send(channel_for(r, SECRET), MESSAGE, now=lambda: time.time() - 2 * 3600)
        assert r.messages == []
    assert not answer.ok and not answer.retryable


def test_forced_bad_sign_then_ok() -> None:
    with robot("dingtalk", secret=SECRET) as r:
        r.fail_next(1, "bad_sign")
        first = send(channel_for(r, SECRET), MESSAGE)
        second = send(channel_for(r, SECRET), MESSAGE)
    assert (first.ok, first.retryable) == (False, False) and "310000" in first.error
    assert second.ok


def test_dingtalk_sign_recipe() -> None:
    secret, stamp = "SECabc", 1700000000000
    digest = hmac.new(secret.encode("utf-8"), f"{stamp}\n{secret}".encode(),
                      digestmod=hashlib.sha256).digest()
    assert dingtalk.sign(secret, stamp) == quote_plus(base64.b64encode(digest))
    url = dingtalk.signed_url("https://oapi.dingtalk.com/robot/send?access_token=T", secret,
                              stamp)
    assert url == ("https://oapi.dingtalk.com/robot/send?access_token=T"
                   f"&timestamp={stamp}&sign={quote_plus(base64.b64encode(digest))}")


def test_dingtalk_sign_is_url_encoded() -> None:
    for stamp in range(1700000000000, 1700000000200):
        raw = base64.b64encode(hmac.new(b"S", f"{stamp}\nS".encode(), hashlib.sha256).digest())
        if b"+" in raw and b"/" in raw:
            break
    else:
        pytest.fail("no timestamp gave both + and / in the signature")
    signed = dingtalk.sign("S", stamp)
    assert "+" not in signed and "/" not in signed
    assert "%2B" in signed and "%2F" in signed


def test_feishu_sign_recipe() -> None:
    secret, stamp = "demo-secret", "1599360473"
    string_to_sign = f"{stamp}\n{secret}"
    code = hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    assert feishu.sign(secret, stamp) == base64.b64encode(code).decode("utf-8")
    assert feishu.sign(secret, int(stamp)) == feishu.sign(secret, stamp)


def test_webhook_sign_recipe() -> None:
    body = json.dumps({"event": "x", "text": "é"}, ensure_ascii=False).encode()
    expected = hmac.new(b"k3y", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhook.sign("k3y", 1700000000, body) == "sha256=" + expected


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status", "code", "after"), [
    ("dingtalk", 200, "130101", None),
    ("wecom", 200, "45009", None),
    ("feishu", 200, "11232", None),
    ("slack", 429, "HTTP 429", 7.0),
    ("webhook", 429, "HTTP 429", 7.0),
])
def test_rate_limit_is_retryable(kind: str, status: int, code: str, after: float | None,
                                 client: httpx.Client) -> None:
    secret = SECRET if kind in SIGNED_KINDS else ""
    with robot(kind, secret=secret, retry_after="7") as r:
        r.fail_next(2, "rate_limit")
        answers = [send(channel_for(r, secret), MESSAGE, client=client) for _ in range(3)]
        assert len(r.messages) == 1
    for answer in answers[:2]:
        assert (answer.ok, answer.status, answer.retryable) == (False, status, True)
        assert answer.error.startswith(f"{kind}: {code}")
        assert answer.retry_after == after
    assert answers[2].ok


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_http_429_and_500_are_retryable_and_masked(kind: str) -> None:
    with robot(kind) as r:
        r.fail_next(1, "http_429", retry_after="12")
        r.fail_next(1, "http_500")
        too_many = send(channel_for(r), MESSAGE)
        broken = send(channel_for(r), MESSAGE)
        assert r.token in r.received[1]["answer"]  # the robot echoed the URL
    assert (too_many.ok, too_many.status, too_many.retryable, too_many.retry_after) == \
        (False, 429, True, 12.0)
    assert (broken.ok, broken.status, broken.retryable, broken.retry_after) == \
        (False, 500, True, None)
    assert broken.error.startswith(f"{kind}: HTTP 500 internal error")
    assert "***" in broken.body
    for answer in (too_many, broken):
        assert_no_token(r, answer)


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    with robot("slack", retry_after=formatdate(now + 30, usegmt=True)) as r:
        r.fail_next(1, "http_429")
        answer = send(channel_for(r), MESSAGE, now=lambda: now)
    assert answer.retryable and answer.retry_after == 30.0
    assert retry_after("soon", lambda: now) is None
    assert retry_after(formatdate(now - 5, usegmt=True), lambda: now) == 0.0


@pytest.mark.parametrize(("kind", "code"), [
    ("dingtalk", "300001"), ("wecom", "93000"), ("feishu", "19001"), ("slack", "HTTP 404"),
    ("webhook", "HTTP 404"),
])
def test_wrong_token_is_not_retryable(kind: str, code: str) -> None:
    with robot(kind) as r:
        wrong = r.url.replace(r.token, "0" * 32)
        answer = send(ChannelConfig(type=kind, webhook=wrong), MESSAGE)
    assert not answer.ok and not answer.retryable
    assert answer.error.startswith(f"{kind}: {code}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_closed_port_is_retryable_without_status(kind: str) -> None:
    token = "tok_" + "9" * 28
    url = f"http://127.0.0.1:{closed_port()}/robot/send?access_token={token}"
    answer = send(ChannelConfig(type=kind, webhook=url, secret=SECRET), MESSAGE)
    assert (answer.ok, answer.status, answer.retryable) == (False, None, True)
    assert answer.error == f"{kind}: connection refused"
    assert token not in answer.error


def test_silent_server_times_out_retryable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepted by the kernel, never answered
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        answer = send(ChannelConfig(type="webhook", webhook=url), MESSAGE, timeout=0.3)
    assert (answer.ok, answer.status, answer.retryable) == (False, None, True)
    assert "timed out" in answer.error


@pytest.mark.parametrize(("channel", "error"), [
    (ChannelConfig(type="pager"), "unknown channel type 'pager'"),
    (ChannelConfig(type="slack"), "slack: no webhook URL"),
    (ChannelConfig(type="slack", webhook="not a url/with-a-long-token-1234"), "slack: "),
    (ChannelConfig(type="email", to=("a@example.com",)), "email: smtp_host"),
    (ChannelConfig(type="email", smtp_host="h", to=("a@example.com",), smtp_tls="ssl"),
     "email: smtp_tls 'ssl'"),
])
def test_bad_settings_are_answers(channel: ChannelConfig, error: str) -> None:
    answer = send(channel, MESSAGE)
    assert (answer.ok, answer.status, answer.retryable) == (False, None, False)
    assert answer.error.startswith(error)
    assert "with-a-long-token-1234" not in answer.error


def test_receiver_checks_shape() -> None:
    with robot("dingtalk") as r:
        reply = httpx.post(r.url, json={"msgtype": "markdown", "markdown": {"title": "t"}})
        assert reply.json()["errcode"] == 40035
        reply = httpx.post(r.url, json={"msgtype": "markdown",
                                        "markdown": {"title": "t", "text": "x"},
                                        "at": {"atMobiles": [138]}})
        assert reply.json()["errcode"] == 40035
    with robot("slack") as r:
        reply = httpx.post(r.url, json={"blocks": [{"type": "section", "text": {}}]})
        assert (reply.status_code, reply.text) == (400, "invalid_blocks")
    with robot("feishu") as r:
        reply = httpx.post(r.url, json={"msg_type": "interactive", "card": {}})
        assert reply.json()["code"] == 9499
        assert r.messages == [] and len(r.received) == 1


# -- e-mail ---------------------------------------------------------------------------------


def mail_channel(box: SmtpReceiver, **changes: Any) -> ChannelConfig:
    settings: dict[str, Any] = {
        "type": "email", "smtp_host": box.host, "smtp_port": box.port, "smtp_tls": "none",
        "mail_from": "golive@example.com", "to": ("dev@example.com", "qa@example.com"),
    }
    return ChannelConfig(**{**settings, **changes})


def test_email_text_and_html() -> None:
    with smtp_receiver() as box:
        answer = send(mail_channel(box), MESSAGE)
        assert answer.ok and answer.status == 250, answer
        (mail,) = box.messages
        (envelope,) = box.envelopes
    assert mail["Subject"] == MESSAGE.title
    assert mail["From"] == "golive@example.com"
    assert mail["To"] == "dev@example.com, qa@example.com"
    assert mail["Cc"] == "lead@example.com"
    assert mail["X-Golive-Event"] == "deploy_succeeded"
    assert envelope.rcpt_tos == ["dev@example.com", "qa@example.com", "lead@example.com"]
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    plain, rich = (str(part.get_content()).replace("\r\n", "\n") for part in (text, html))
    assert MESSAGE.text in plain and MESSAGE.link in plain
    assert MESSAGE.html in rich and f'href="{MESSAGE.link}"' in rich


def test_email_login() -> None:
    with smtp_receiver(user="mailer", password="pa55word") as box:
        ok = send(mail_channel(box, smtp_user="mailer", smtp_password="pa55word"), MESSAGE)
        wrong = send(mail_channel(box, smtp_user="mailer", smtp_password="bad-pa55"), MESSAGE)
        anonymous = send(mail_channel(box), MESSAGE)
        assert len(box.messages) == 1 and len(box.logins) == 1
    assert ok.ok
    assert (wrong.ok, wrong.status, wrong.retryable) == (False, 535, False)
    assert wrong.error.startswith("email: login refused: 535")
    assert "bad-pa55" not in wrong.error + wrong.body
    assert (anonymous.ok, anonymous.status, anonymous.retryable) == (False, 530, False)


@pytest.mark.parametrize(("reply", "status", "retryable"), [
    ("451 4.3.0 Try again later", 451, True),
    ("554 5.7.1 Message rejected as spam", 554, False),
])
def test_email_refused_data(reply: str, status: int, retryable: bool) -> None:
    with smtp_receiver() as box:
        box.fail_next(1, reply)
        answer = send(mail_channel(box), MESSAGE)
        again = send(mail_channel(box), MESSAGE)
    assert (answer.ok, answer.status, answer.retryable) == (False, status, retryable)
    assert reply in answer.body
    assert again.ok


def test_email_refused_recipients() -> None:
    with smtp_receiver() as box:
        box.refuse = {"dev@example.com", "qa@example.com", "lead@example.com"}
        none = send(mail_channel(box), MESSAGE)
        box.refuse = {"qa@example.com"}
        some = send(mail_channel(box), MESSAGE)
    assert (none.ok, none.status, none.retryable) == (False, 550, False)
    assert "recipients refused" in none.error
    assert some.ok and "qa@example.com" in some.error


@pytest.mark.parametrize(("tls", "retryable"), [("starttls", False), ("tls", False)])
def test_email_tls_against_plain_server(tls: str, retryable: bool) -> None:
    with smtp_receiver() as box:
        answer = send(mail_channel(box, smtp_tls=tls), MESSAGE, timeout=3)
        assert box.messages == []
    assert (answer.ok, answer.status, answer.retryable) == (False, None, retryable)


def test_email_closed_port_is_retryable() -> None:
    answer = send(ChannelConfig(type="email", smtp_host="127.0.0.1", smtp_port=closed_port(),
                                smtp_tls="none", to=("a@example.com",),
                                smtp_password="hunter2-secret"), MESSAGE)
    assert (answer.ok, answer.status, answer.retryable) == (False, None, True)
    assert "connection refused" in answer.error
