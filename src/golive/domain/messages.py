"""Notification events and their messages, in English and Chinese, in one place.

``event_of`` names the event a transition is; ``who_acts`` says which project roles
must act next (they are @-mentioned); ``render`` turns the facts of one event into
a title and Markdown, plain-text and HTML bodies in the channel's language.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

SUBMITTED = "submitted"
DEPLOY_STARTED = "deploy_started"
DEPLOY_SUCCEEDED = "deploy_succeeded"
DEPLOY_FAILED = "deploy_failed"
WAITING_FOR_TEST = "waiting_for_test"
PASSED = "passed"
REJECTED = "rejected"
RELEASE_QUEUED = "release_queued"
RELEASED = "released"
ROLLED_BACK = "rolled_back"
SQL_WAITING_APPROVAL = "sql_waiting_approval"
STATEMENT_UNKNOWN = "statement_unknown"
EVENTS = (SUBMITTED, DEPLOY_STARTED, DEPLOY_SUCCEEDED, DEPLOY_FAILED, WAITING_FOR_TEST, PASSED,
          REJECTED, RELEASE_QUEUED, RELEASED, ROLLED_BACK, SQL_WAITING_APPROVAL,
          STATEMENT_UNKNOWN)
ERROR_LINES = 5

TITLES: dict[str, dict[str, str]] = {
    "en": {
        SUBMITTED: "order #{order} submitted",
        DEPLOY_STARTED: "order #{order}: deploying on {stage}",
        DEPLOY_SUCCEEDED: "order #{order} deployed on {stage}",
        DEPLOY_FAILED: "order #{order}: deploy on {stage} FAILED",
        WAITING_FOR_TEST: "order #{order} waits for test on {stage}",
        PASSED: "order #{order} passed {stage}",
        REJECTED: "order #{order} rejected on {stage}",
        RELEASE_QUEUED: "order #{order}: release queued for the window",
        RELEASED: "order #{order} released",
        ROLLED_BACK: "order #{order} rolled back on {stage}",
        SQL_WAITING_APPROVAL: "order #{order}: SQL waits for approval",
        STATEMENT_UNKNOWN: "order #{order}: a statement is unknown on {stage}",
    },
    "zh_CN": {
        SUBMITTED: "上线单 #{order} 已提交",
        DEPLOY_STARTED: "上线单 #{order} 正在部署到 {stage}",
        DEPLOY_SUCCEEDED: "上线单 #{order} 已部署到 {stage}",
        DEPLOY_FAILED: "上线单 #{order} 部署到 {stage} 失败",
        WAITING_FOR_TEST: "上线单 #{order} 等待在 {stage} 测试",
        PASSED: "上线单 #{order} 已通过 {stage}",
        REJECTED: "上线单 #{order} 在 {stage} 被驳回",
        RELEASE_QUEUED: "上线单 #{order} 已排队等待上线窗口",
        RELEASED: "上线单 #{order} 已上线",
        ROLLED_BACK: "上线单 #{order} 已在 {stage} 回滚",
        SQL_WAITING_APPROVAL: "上线单 #{order} 的 SQL 等待审批",
        STATEMENT_UNKNOWN: "上线单 #{order} 有一条 SQL 状态未知（{stage}）",
    },
}
LABELS: dict[str, dict[str, str]] = {
    "en": {"project": "Project", "order": "Order", "stage": "Stage", "services": "Services",
           "by": "By", "duration": "Duration", "reason": "Reason", "error": "Error",
           "open": "Open the order", "act": "Your turn", "when": "Starts"},
    "zh_CN": {"project": "项目", "order": "上线单", "stage": "环境", "services": "服务",
              "by": "操作人", "duration": "耗时", "reason": "原因", "error": "错误",
              "open": "查看上线单", "act": "请处理", "when": "开始时间"},
}

_BY_TRANSITION = {"submit": SUBMITTED, "deploy": DEPLOY_STARTED, "release": DEPLOY_STARTED,
                  "fail": DEPLOY_FAILED, "pass": PASSED, "reject": REJECTED,
                  "rollback": ROLLED_BACK}


def events_of(action: str, to_state: str) -> tuple[str, ...]:
    """The events a transition is (``succeed`` is two: deployed, then waiting for test)."""
    if action == "succeed":
        return (RELEASED,) if to_state == "done" else (DEPLOY_SUCCEEDED, WAITING_FOR_TEST)
    event = _BY_TRANSITION.get(action)
    return (event,) if event else ()


def who_acts(event: str) -> tuple[str, ...]:
    """The project roles that must act after ``event`` ("creator": whoever filed it)."""
    if event == SUBMITTED:
        return ("developer",)
    if event == WAITING_FOR_TEST:
        return ("tester",)
    if event == PASSED:  # the next stage (or the release) is a releaser's
        return ("releaser",)
    if event in (DEPLOY_FAILED, REJECTED, ROLLED_BACK, RELEASED):
        return ("creator",)
    if event in (SQL_WAITING_APPROVAL, STATEMENT_UNKNOWN):
        return ("releaser", "owner")
    return ()


@dataclass(frozen=True)
class ServiceLine:
    service: str
    branch: str
    commit: str = ""


@dataclass(frozen=True)
class Facts:
    """What a message says about one event."""

    event: str
    project: str
    order_id: int
    title: str
    stage: str = ""
    actor: str = ""
    services: tuple[ServiceLine, ...] = ()
    seconds: float | None = None
    reason: str = ""
    error: str = ""
    link: str = ""
    mentions: tuple[str, ...] = field(default=())
    """Display names of the people asked to act (the channel adds its own @ markup)."""


@dataclass(frozen=True)
class Rendered:
    title: str
    markdown: str
    text: str
    html: str


def _language(language: str) -> str:
    return language if language in TITLES else "en"


def _lines(facts: Facts, labels: dict[str, str]) -> list[tuple[str, str]]:
    rows = [(labels["project"], facts.project),
            (labels["order"], f"#{facts.order_id} {facts.title}")]
    if facts.stage:
        rows.append((labels["stage"], facts.stage))
    if facts.services:
        rows.append((labels["services"], ", ".join(
            f"{s.service}@{s.branch}" + (f" ({s.commit[:8]})" if s.commit else "")
            for s in facts.services)))
    if facts.actor:
        rows.append((labels["by"], facts.actor))
    if facts.seconds is not None:
        rows.append((labels["duration"], f"{facts.seconds:.0f}s"))
    if facts.reason:
        rows.append((labels["reason"], facts.reason))
    return rows


def error_excerpt(error: str) -> str:
    return "\n".join(error.strip().splitlines()[:ERROR_LINES])


def render(facts: Facts, language: str = "en") -> Rendered:
    """The message of ``facts`` in ``language`` (zh_CN or en)."""
    lang = _language(language)
    labels = LABELS[lang]
    title = f"[{facts.project}] " + TITLES[lang][facts.event].format(
        order=facts.order_id, stage=facts.stage)
    rows = _lines(facts, labels)
    error = error_excerpt(facts.error)
    act = f"{labels['act']}: {', '.join(facts.mentions)}" if facts.mentions else ""
    markdown = [f"### {title}", *(f"- **{k}**: {v}" for k, v in rows)]
    text = [title, *(f"{k}: {v}" for k, v in rows)]
    body = [f"<h3>{html.escape(title)}</h3><ul>",
            *(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in rows), "</ul>"]
    if error:
        markdown += [f"- **{labels['error']}**:", "```", error, "```"]
        text += [f"{labels['error']}:", error]
        body.append(f"<p><b>{html.escape(labels['error'])}</b></p><pre>{html.escape(error)}</pre>")
    if act:
        markdown.append(act)
        text.append(act)
        body.append(f"<p>{html.escape(act)}</p>")
    if facts.link:
        markdown.append(f"[{labels['open']}]({facts.link})")
        text.append(f"{labels['open']}: {facts.link}")
        body.append(f'<p><a href="{html.escape(facts.link)}">{html.escape(labels["open"])}</a></p>')
    return Rendered(title, "\n".join(markdown), "\n".join(text), "\n".join(body))
