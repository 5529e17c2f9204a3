"""Notifications end to end: an order through test, staging and prod tells each channel
(real robots on 127.0.0.1 and an SMTP server) what it asked to hear, in its language,
@-mentioning whoever must act; retries, rate limits and a dead channel never touch a
deployment; `golive notify log|test`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from golive.cli.main import main
from golive.domain import messages
from golive.services import notify
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import Notification, User, utcnow
from golive.testing.receivers import Robot, SmtpReceiver, robot, smtp_receiver
from golive.testing.world import act, apply_config, deploy, file_order, local_hosts, make_repo, rows

BRANCH = "feature/x"
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "tom", "roles": ["tester"]},
           {"user": "rita", "roles": ["releaser"]}]
PROFILES = {"alice": {"mobile": "13800000001", "dingtalk_id": "dt-alice", "email": "a@x.test"},
            "tom": {"mobile": "13800000002", "dingtalk_id": "dt-tom", "wecom_id": "wc-tom",
                    "email": "tom@x.test"},
            "rita": {"mobile": "13800000003", "dingtalk_id": "dt-rita", "email": "r@x.test"}}
SECRET = "SEC0123456789abcdef"


@dataclass
class Channels:
    dingtalk: Robot
    wecom: Robot
    webhook: Robot
    mail: SmtpReceiver


@pytest.fixture
def channels() -> Iterator[Channels]:
    with ExitStack() as stack:
        yield Channels(stack.enter_context(robot("dingtalk", SECRET)),
                       stack.enter_context(robot("wecom")),
                       stack.enter_context(robot("webhook", SECRET)),
                       stack.enter_context(smtp_receiver()))


def setup(tmp_path: Path, runtime: Runtime, ch: Channels, **notify_extra: Any) -> None:
    repo = make_repo(tmp_path, "web", {"src/index.html": "v1\n"},
                     branches={BRANCH: {"src/index.html": "v2\n"}})
    stage = {"mode": "artifact", "path": "srv/web", "hosts": ["h1"]}
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1"]),
        "projects": [{
            "name": "shop", "members": MEMBERS,
            "notify": [
                {"type": "dingtalk", "name": "ding", "webhook": ch.dingtalk.url,
                 "secret": SECRET, "language": "zh_CN"},
                {"type": "wecom", "name": "wecom", "webhook": ch.wecom.url,
                 "events": ["waiting_for_test", "deploy_failed"]},
                {"type": "webhook", "name": "hook", "webhook": ch.webhook.url,
                 "secret": SECRET, "events": ["released"]},
                {"type": "email", "name": "mail", "smtp_host": "127.0.0.1",
                 "smtp_port": ch.mail.port, "smtp_tls": "none", "mail_from": "golive@x.test",
                 "to": ["ops@x.test"], "events": ["passed", "released"]},
                *notify_extra.get("more", []),
            ],
            "services": [{"name": "web", "repo": repo.url, "build": "cp -r src dist",
                          "pack": ["dist"],
                          "stages": {s: stage for s in ("test", "staging", "prod")}}],
        }]})
    with runtime.store.session() as session:
        for name, fields in PROFILES.items():
            user = session.scalar(select(User).where(User.name == name))
            assert user is not None
            for key, value in fields.items():
                setattr(user, key, value)
        session.commit()


def deliver(runtime: Runtime) -> None:
    while notify.deliver_due(runtime):
        pass


def titles(r: Robot) -> list[str]:
    out = []
    for body in r.messages:
        markdown = body.get("markdown") or {}
        out.append(markdown.get("title") or body.get("title") or "")
    return out


def test_an_order_through_the_pipeline_tells_each_channel_its_part(
        tmp_path: Path, sqlite_runtime: Runtime, channels: Channels,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLIVE_PUBLIC_URL", "https://golive.example")
    runtime = sqlite_runtime
    setup(tmp_path, runtime, channels)
    order = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)], "Coupons")
    assert deploy(runtime, order, "alice")[1]
    act(runtime, order, "pass", "tom")
    assert deploy(runtime, order, "rita")[1]
    act(runtime, order, "pass", "tom")
    assert deploy(runtime, order, "rita", action="release")[1]
    deliver(runtime)

    n = f"#{order}"
    assert titles(channels.dingtalk) == [
        f"[shop] 上线单 {n} 已提交", f"[shop] 上线单 {n} 正在部署到 test",
        f"[shop] 上线单 {n} 已部署到 test", f"[shop] 上线单 {n} 等待在 test 测试",
        f"[shop] 上线单 {n} 已通过 test", f"[shop] 上线单 {n} 正在部署到 staging",
        f"[shop] 上线单 {n} 已部署到 staging", f"[shop] 上线单 {n} 等待在 staging 测试",
        f"[shop] 上线单 {n} 已通过 staging", f"[shop] 上线单 {n} 正在部署到 prod",
        f"[shop] 上线单 {n} 已上线"]
    waiting = channels.dingtalk.messages[3]
    assert waiting["at"]["atMobiles"] == ["13800000002"]  # tom, the tester, must act
    assert "dt-tom" in waiting["at"].get("atUserIds", [])
    text = waiting["markdown"]["text"]
    assert "web@feature/x" in text and f"https://golive.example/orders/{order}" in text
    passed = channels.dingtalk.messages[4]
    assert passed["at"]["atMobiles"] == ["13800000003"]  # then rita, the releaser
    # the signature was checked by the robot on every request (a bad one is refused)
    assert all(r["accepted"] for r in channels.dingtalk.received)

    assert [m["markdown"]["content"].splitlines()[0] for m in channels.wecom.messages] == [
        f"### [shop] order {n} waits for test on test",
        f"### [shop] order {n} waits for test on staging"]
    assert "<@wc-tom>" in channels.wecom.messages[0]["markdown"]["content"]

    (released,) = channels.webhook.messages
    assert (released["event"], released["order"], released["stage"]) == (
        "released", order, "prod")
    assert released["services"][0]["commit"]  # the merge that went live
    assert [m["Subject"] for m in channels.mail.messages] == [
        f"[shop] order {n} passed test", f"[shop] order {n} passed staging",
        f"[shop] order {n} released"]

    code = main(["notify", "log", "-p", "shop", "--json"])
    assert code == 0


def test_a_rate_limited_robot_is_retried_with_backoff_and_logged(
        tmp_path: Path, sqlite_runtime: Runtime, channels: Channels,
        capsys: pytest.CaptureFixture[str]) -> None:
    runtime = sqlite_runtime
    setup(tmp_path, runtime, channels)
    channels.dingtalk.fail_next(2, "rate_limit")
    file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    start = utcnow()
    assert notify.deliver_due(runtime, start) == 1
    (queued,) = rows(runtime, Notification)
    assert (queued.status, queued.attempts) == ("queued", 1)
    assert queued.next_at - start >= timedelta(seconds=2)
    assert notify.deliver_due(runtime, start + timedelta(seconds=1)) == 0  # not yet due
    assert notify.deliver_due(runtime, start + timedelta(seconds=3)) == 1  # limited again
    assert notify.deliver_due(runtime, start + timedelta(seconds=30)) == 1
    (sent,) = rows(runtime, Notification)
    assert (sent.status, sent.attempts) == ("sent", 3)
    assert len(channels.dingtalk.messages) == 1

    assert main(["notify", "log", "-p", "shop", "--json"]) == 0
    log = json.loads(capsys.readouterr().out)
    assert [(e["channel"], e["ok"]) for e in log] == [("ding", False), ("ding", False),
                                                      ("ding", True)]
    assert "130101" in log[0]["error"]
    assert SECRET not in json.dumps(log) and channels.dingtalk.token not in json.dumps(log)


def test_a_channel_keeps_to_its_vendor_rate_limit(
        tmp_path: Path, sqlite_runtime: Runtime, channels: Channels) -> None:
    runtime = sqlite_runtime
    setup(tmp_path, runtime, channels)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    with runtime.store.session() as session:
        order = get_order(session, order_id)
        for _ in range(24):
            notify.emit(session, order, messages.DEPLOY_STARTED, actor="alice", stage="test")
        session.commit()
    now = utcnow()
    deliver_once = notify.deliver_due(runtime, now, limit=100)
    assert deliver_once == 20  # of 25 (the submitted one too): DingTalk's 20 a minute
    assert len(channels.dingtalk.messages) == 20
    waiting = [r for r in rows(runtime, Notification) if r.status == "queued"]
    assert len(waiting) == 5 and all(r.attempts == 0 and r.next_at > now for r in waiting)
    assert notify.deliver_due(runtime, now + timedelta(seconds=61), limit=100) == 5


def test_a_dead_channel_never_fails_a_deployment(
        tmp_path: Path, sqlite_runtime: Runtime, channels: Channels) -> None:
    runtime = sqlite_runtime
    dead = {"type": "slack", "name": "dead", "webhook": "http://127.0.0.1:9/hooks/x"}
    setup(tmp_path, runtime, channels, more=[dead])
    order = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(runtime, order, "alice")[1]
    deliver(runtime)
    stuck = [r for r in rows(runtime, Notification) if r.status == "queued"]
    assert stuck and all("connection refused" in r.last_error for r in stuck)
    assert len(channels.dingtalk.messages) == 4  # the others went out all the same


def test_notify_test_sends_now_and_prints_the_answer(
        tmp_path: Path, sqlite_runtime: Runtime, channels: Channels,
        capsys: pytest.CaptureFixture[str]) -> None:
    setup(tmp_path, sqlite_runtime, channels)
    assert main(["notify", "test", "ding", "-p", "shop"]) == 0
    assert capsys.readouterr().out.startswith("ding: ok (status 200)")
    (message,) = channels.dingtalk.messages
    assert message["markdown"]["title"] == "golive: 测试消息"
    channels.dingtalk.fail_next(1, "bad_sign")
    assert main(["notify", "test", "ding", "-p", "shop"]) == 1
    assert "310000" in capsys.readouterr().err
    assert main(["--as", "tom", "notify", "test", "ding", "-p", "shop"]) == 1
    assert "needs the role owner" in capsys.readouterr().err


def test_a_rejection_reaches_feishu_and_slack_with_its_reason(
        tmp_path: Path, sqlite_runtime: Runtime, channels: Channels) -> None:
    runtime = sqlite_runtime
    with robot("feishu", SECRET) as feishu, robot("slack") as slack:
        setup(tmp_path, runtime, channels, more=[
            {"type": "feishu", "name": "lark", "webhook": feishu.url, "secret": SECRET,
             "events": ["rejected", "deploy_failed"]},
            {"type": "slack", "name": "slack", "webhook": slack.url, "events": ["rejected"]}])
        with runtime.store.session() as session:
            alice = session.scalar(select(User).where(User.name == "alice"))
            assert alice is not None
            alice.feishu_id = "ou_alice"
            session.commit()
        order = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)], "Coupons")
        assert deploy(runtime, order, "alice")[1]
        act(runtime, order, "reject", "tom", reason="the total is off by one")
        deliver(runtime)
        (card,) = feishu.messages
        (posted,) = slack.messages
    assert card["card"]["header"]["title"]["content"] == f"[shop] order #{order} rejected on test"
    content = card["card"]["elements"][0]["content"]
    assert "the total is off by one" in content and "By**: tom" in content
    assert "<at id=ou_alice></at>" in content  # alice filed it: she must act
    assert posted["text"].startswith(f"[shop] order #{order} rejected on test")
    assert "the total is off by one" in posted["blocks"][1]["text"]["text"]
    # the DingTalk channel (every event) mentions alice's mobile on the rejection
    rejected = channels.dingtalk.messages[-1]
    assert rejected["at"]["atMobiles"] == ["13800000001"]
