"""The notification rules as tables: which events a move is, who must act, and the
messages in both languages."""

from __future__ import annotations

import pytest

from golive.domain import messages as m


@pytest.mark.parametrize(("action", "to_state", "events"), [
    ("submit", "submitted", (m.SUBMITTED,)),
    ("deploy", "test:deploying", (m.DEPLOY_STARTED,)),
    ("release", "prod:deploying", (m.DEPLOY_STARTED,)),
    ("succeed", "test:deployed", (m.DEPLOY_SUCCEEDED, m.WAITING_FOR_TEST)),
    ("succeed", "done", (m.RELEASED,)),
    ("fail", "test:failed", (m.DEPLOY_FAILED,)),
    ("pass", "test:passed", (m.PASSED,)),
    ("reject", "test:rejected", (m.REJECTED,)),
    ("rollback", "prod:rolled_back", (m.ROLLED_BACK,)),
    ("cancel", "cancelled", ()),
])
def test_the_events_of_each_move(action: str, to_state: str, events: tuple[str, ...]) -> None:
    assert m.events_of(action, to_state) == events


@pytest.mark.parametrize(("event", "roles"), [
    (m.SUBMITTED, ("developer",)), (m.WAITING_FOR_TEST, ("tester",)),
    (m.PASSED, ("releaser",)), (m.DEPLOY_FAILED, ("creator",)), (m.REJECTED, ("creator",)),
    (m.RELEASED, ("creator",)), (m.ROLLED_BACK, ("creator",)),
    (m.SQL_WAITING_APPROVAL, ("releaser", "owner")), (m.STATEMENT_UNKNOWN, ("releaser", "owner")),
    (m.DEPLOY_STARTED, ()), (m.DEPLOY_SUCCEEDED, ()), (m.RELEASE_QUEUED, ()),
])
def test_who_must_act_next(event: str, roles: tuple[str, ...]) -> None:
    assert m.who_acts(event) == roles


FACTS = m.Facts(event=m.DEPLOY_FAILED, project="shop", order_id=7, title="Coupons",
                stage="test", actor="alice",
                services=(m.ServiceLine("web", "feature/x", "0123456789abcdef"),),
                seconds=12.4, error="line 1\nline 2\nline 3\nline 4\nline 5\nline 6 <b>",
                link="https://golive.example/orders/7", mentions=("Alice",))


def test_a_message_names_everything_in_english() -> None:
    out = m.render(FACTS, "en")
    assert out.title == "[shop] order #7: deploy on test FAILED"
    for part in ("Project**: shop", "#7 Coupons", "Stage**: test",
                 "web@feature/x (01234567)", "By**: alice", "Duration**: 12s",
                 "Your turn: Alice", "[Open the order](https://golive.example/orders/7)"):
        assert part in out.markdown, part
    assert "line 5" in out.markdown and "line 6" not in out.markdown  # the first lines
    assert "Open the order: https://golive.example/orders/7" in out.text
    assert "&lt;b&gt;" not in out.html and "<pre>line 1" in out.html


@pytest.mark.parametrize("event", m.EVENTS)
def test_every_event_has_a_title_in_both_languages(event: str) -> None:
    facts = m.Facts(event=event, project="shop", order_id=3, title="t", stage="prod")
    english, chinese = m.render(facts, "en"), m.render(facts, "zh_CN")
    assert english.title.startswith("[shop] order #3") and "#3" in chinese.title
    assert english.title != chinese.title
    assert all(ord(c) < 128 for c in english.markdown)
    assert any("\u4e00" <= c <= "\u9fff" for c in chinese.markdown)


def test_chinese_labels_and_an_unknown_language_falls_back_to_english() -> None:
    assert "**项目**: shop" in m.render(FACTS, "zh_CN").markdown
    assert m.render(FACTS, "fr").title == m.render(FACTS, "en").title


def test_a_channel_naming_an_unknown_event_is_refused_naming_the_events() -> None:
    from pydantic import ValidationError

    from golive.config.schema import ChannelSpec

    with pytest.raises(ValidationError, match="unknown event deployed; events are: submitted"):
        ChannelSpec(type="slack", webhook="http://127.0.0.1/x", events=["deployed"])
    assert ChannelSpec(type="slack", webhook="http://127.0.0.1/x",
                       events=["released"]).events == ["released"]
