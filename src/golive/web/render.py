"""Templates: one Jinja2 environment, its filters, and the labels of golive's words.

States, phases, roles and actions are stored in English (``test:deployed``); the pages
show them in the reader's language through the filters here, so a template never
spells a state itself.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_datetime
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from golive.web import i18n
from golive.web.i18n import N_, gettext

TEMPLATES = Path(__file__).parent / "templates"

WORDS: dict[str, str] = {
    # stages a project usually has (others show as they are named)
    "test": N_("test"), "staging": N_("staging"), "prod": N_("prod"),
    # phases and whole-order states
    "draft": N_("draft"), "submitted": N_("submitted"), "deploying": N_("deploying"),
    "deployed": N_("deployed"), "failed": N_("failed"), "passed": N_("passed"),
    "rejected": N_("rejected"), "rolled_back": N_("rolled back"), "done": N_("done"),
    "cancelled": N_("cancelled"),
    # roles
    "developer": N_("developer"), "tester": N_("tester"), "releaser": N_("releaser"),
    "owner": N_("owner"), "admin": N_("site admin"),
    # actions (the history's words)
    "submit": N_("submit"), "deploy": N_("deploy"), "release": N_("release"),
    "succeed": N_("succeed"), "fail": N_("fail"), "pass": N_("pass"),
    "reject": N_("reject"), "rollback": N_("roll back"), "cancel": N_("cancel"),
    "create": N_("create"), "edit": N_("edit"), "deployment": N_("deployment"),
    "take_over": N_("lane taken over"), "lane_lost": N_("lane lost"),
    "lane_released": N_("lane released"), "auto_refused": N_("automatic step refused"),
    "push": N_("git push"), "release_queued": N_("release queued"),
    "accept_unverified": N_("unverified main accepted"),
    "release_not_started": N_("queued release not started"),
    "resolve_sql": N_("SQL resolved"), "approve_sql": N_("SQL approved"),
    # deployment kinds and results
    "iterative": N_("iterative"), "full": N_("full"), "queued": N_("queued"),
    "running": N_("running"), "succeeded": N_("succeeded"), "interrupted": N_("interrupted"),
    "paused": N_("paused"), "executed": N_("executed"), "pending": N_("pending"),
    "unknown": N_("unknown"), "skipped": N_("skipped"), "success": N_("success"),
}


def word(value: object) -> str:
    """One of golive's words in the reader's language (unknown words as they are)."""
    text = str(value)
    return gettext(WORDS[text]) if text in WORDS else text


def state_label(state: str) -> str:
    """``test:deployed`` -> "test · deployed", each part translated."""
    if ":" in state:
        stage, _, phase = state.partition(":")
        return f"{word(stage)} · {word(phase)}"
    return word(state)


def state_color(state: str) -> str:
    """The CSS class of a state's badge: what the reader should feel about it."""
    phase = state.rpartition(":")[2]
    return {"deploying": "run", "deployed": "info", "passed": "ok", "done": "ok",
            "failed": "bad", "rejected": "bad", "rolled_back": "warn",
            "cancelled": "mute", "draft": "mute", "submitted": "info",
            "running": "run", "succeeded": "ok", "interrupted": "warn", "queued": "mute",
            "paused": "warn", "success": "ok", "unknown": "warn"}.get(phase, "info")


def when(value: datetime | str | None) -> str:
    """A time in the reader's language (UTC, as the store keeps it)."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(
        value, str) else value
    return format_datetime(moment, "yyyy-MM-dd HH:mm:ss", locale=i18n.current())


def badge(state: str) -> Markup:
    return Markup('<span class="badge {}">{}</span>').format(state_color(state),
                                                              state_label(state))


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True)
    env.filters.update(word=word, state=state_label, state_color=state_color, when=when,
                       badge=badge)
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(context)
