"""Filing orders and moving them through the pipeline, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from golive.domain import sql as sqlrules
from golive.domain.workflow import Action
from golive.errors import (
    GoliveError,
    InputError,
    NotFound,
    PermissionDenied,
    TransitionRefused,
)
from golive.services import orders, users
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import Member, Order, OrderHistory, Project, Service, User

STAGES = ["test", "staging", "prod"]
ROLES = {"dev": "developer", "tester": "tester", "releaser": "releaser", "owner": "owner"}
API = [ItemRequest("api", "feature/coupon")]


@pytest.fixture
def shop(runtime: Runtime) -> Iterator[Runtime]:
    """Project shop (test, staging, prod; services api and web) with one user per role."""
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        project = Project(name="shop", stages=STAGES)
        project.services.append(Service(name="api", repo="git@example.com:shop/api.git"))
        project.services.append(Service(name="web", repo="git@example.com:shop/web.git",
                                        position=1))
        for name, role in ROLES.items():
            project.members.append(Member(user=User(name=name), role=role))
        other = Project(name="other", stages=STAGES)
        other.members.append(Member(user=User(name="outsider-of-shop"), role="owner"))
        session.add_all([admin, project, other])
        session.commit()
    yield runtime


def who(session: Session, name: str | None) -> User:
    return users.acting_user(session, name)


def history(session: Session, order_id: int) -> list[tuple[str, str, str, str, str]]:
    rows = session.execute(
        select(OrderHistory.actor, OrderHistory.action, OrderHistory.from_state,
               OrderHistory.to_state, OrderHistory.reason)
        .where(OrderHistory.order_id == order_id).order_by(OrderHistory.id))
    return [tuple(row) for row in rows]  # type: ignore[misc]


def order_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Order)) or 0


def new_order(runtime: Runtime, *moves: tuple[str, str | None]) -> int:
    """A committed order of dev, moved by each (action, user) in turn."""
    with runtime.store.session() as session:
        order = orders.create_order(session, who(session, "dev"), "shop", API)
        session.commit()
        for action, by in moves:
            orders.transition(session, order.id, action,
                              None if by is None else who(session, by))
            session.commit()
        return order.id


def state_of(runtime: Runtime, order_id: int) -> tuple[str, int]:
    with runtime.store.session() as session:
        order = orders.get_order(session, order_id)
        return order.state, order.version


# -- create_order ---------------------------------------------------------------------------


def test_a_developer_files_a_draft_order(shop: Runtime) -> None:
    with shop.store.session() as session:
        order = orders.create_order(
            session, who(session, "dev"), "shop",
            [ItemRequest("api", "feature/coupon"), ItemRequest("web", "fix/banner")],
            title="优惠券上线")
        session.commit()
        order_id = order.id
    with shop.store.session() as session:
        order = orders.get_order(session, order_id)
        assert (order.title, order.state, order.version) == ("优惠券上线", "draft", 1)
        assert (order.project.name, order.created_by.name) == ("shop", "dev")
        assert [(i.service.name, i.branch, i.position) for i in order.items] == [
            ("api", "feature/coupon", 0), ("web", "fix/banner", 1)]
        assert history(session, order_id) == [("dev", "create", "", "draft", "")]


def test_the_default_title_names_services_and_branches(shop: Runtime) -> None:
    with shop.store.session() as session:
        order = orders.create_order(
            session, who(session, "owner"), "shop",
            [ItemRequest("api", "feature/coupon"), ItemRequest("web", "main")])
        assert order.title == "api@feature/coupon, web@main"
        # a site admin needs no role in the project
        by_admin = orders.create_order(session, who(session, None), "shop", API)
        assert by_admin.created_by.name == "admin"


def test_sql_is_split_into_statements_with_checksums(shop: Runtime) -> None:
    script = (
        "-- add the note column\n"
        "ALTER TABLE coupon ADD note VARCHAR(20);\n"
        "INSERT INTO coupon (note) VALUES ('a;b'), ('满100减20');\n"
        "\n"
        "UPDATE coupon SET note = 'x' WHERE id = 1"
    )
    with shop.store.session() as session:
        order = orders.create_order(
            session, who(session, "dev"), "shop",
            [ItemRequest("api", "feature/coupon", sql=script), ItemRequest("web", "main")])
        session.commit()
        order_id = order.id
    expected = sqlrules.split_statements(script)
    assert len(expected) == 3
    with shop.store.session() as session:
        api, web = orders.get_order(session, order_id).items
        assert [(s.position, s.text, s.checksum) for s in api.statements] == [
            (n, text, sqlrules.checksum(text)) for n, text in enumerate(expected)]
        assert "('a;b')" in api.statements[1].text  # a ';' inside a literal does not split
        assert "满100减20" in api.statements[1].text
        assert len({s.checksum for s in api.statements}) == 3
        assert web.statements == []


def test_a_tester_cannot_file_an_order(shop: Runtime) -> None:
    with shop.store.session() as session:
        with pytest.raises(PermissionDenied) as caught:
            orders.create_order(session, who(session, "tester"), "shop", API)
        assert "developer" in str(caught.value) and "tester" in str(caught.value)
        assert set(caught.value.needed_roles) == {"developer", "owner"}
        # nor can an owner of another project
        with pytest.raises(PermissionDenied, match="no role in this project"):
            orders.create_order(session, who(session, "outsider-of-shop"), "shop", API)
        assert order_count(session) == 0


def test_an_unknown_service_or_project_is_not_found(shop: Runtime) -> None:
    with shop.store.session() as session:
        dev = who(session, "dev")
        with pytest.raises(NotFound, match="service billing does not exist") as caught:
            orders.create_order(session, dev, "shop",
                                [ItemRequest("api", "main"), ItemRequest("billing", "main")])
        assert (caught.value.kind, caught.value.key) == ("service", "billing")
        with pytest.raises(NotFound, match="project nowhere does not exist"):
            orders.create_order(session, dev, "nowhere", API)
        session.rollback()
        assert order_count(session) == 0


BAD_BRANCHES = ["-x", "a..b", "has space", "", "feat~1", "ends.lock", "tab\there", "a:b"]


def test_an_invalid_branch_is_refused(shop: Runtime) -> None:
    with shop.store.session() as session:
        dev = who(session, "dev")
        for branch in BAD_BRANCHES:
            with pytest.raises(InputError, match="branch") as caught:
                orders.create_order(session, dev, "shop",
                                    [ItemRequest("web", "main"), ItemRequest("api", branch)])
            assert not isinstance(caught.value, NotFound)
        session.rollback()
        assert order_count(session) == 0
        # what git accepts is accepted
        for branch in ("feature/优惠券", "release-1.2", "fix_x"):
            orders.create_order(session, dev, "shop", [ItemRequest("api", branch)])
        assert order_count(session) == 3


def test_a_service_listed_twice_or_none_is_refused(shop: Runtime) -> None:
    with shop.store.session() as session:
        dev = who(session, "dev")
        with pytest.raises(InputError, match="api is listed twice"):
            orders.create_order(session, dev, "shop",
                                [ItemRequest("api", "a"), ItemRequest("api", "b")])
        with pytest.raises(InputError, match="at least one service"):
            orders.create_order(session, dev, "shop", [])
        session.rollback()
        assert order_count(session) == 0


# -- transition -----------------------------------------------------------------------------


def test_an_order_walks_the_whole_pipeline(shop: Runtime) -> None:
    walk: list[tuple[str, str | None, str]] = [
        ("submit", "dev", "submitted"),
        ("deploy", "dev", "test:deploying"),
        ("succeed", None, "test:deployed"),
        ("pass", "tester", "test:passed"),
        ("deploy", "releaser", "staging:deploying"),
        ("succeed", None, "staging:deployed"),
        ("pass", "tester", "staging:passed"),
        ("release", "releaser", "prod:deploying"),
        ("succeed", None, "done"),
    ]
    with shop.store.session() as session:
        order = orders.create_order(session, who(session, "dev"), "shop", API)
        session.commit()
        order_id = order.id
    previous = "draft"
    expected = [("dev", "create", "", "draft", "")]
    for version, (action, by, target) in enumerate(walk, start=2):
        with shop.store.session() as session:  # each step in its own unit of work
            user = None if by is None else who(session, by)
            moved = orders.transition(session, order_id, action, user)
            session.commit()
            assert (moved.state, moved.version) == (target, version)
        expected.append(("system" if by is None else by, action, previous, target, ""))
        previous = target
    assert state_of(shop, order_id) == ("done", len(walk) + 1)
    with shop.store.session() as session:
        assert history(session, order_id) == expected
        order = orders.get_order(session, order_id)
        assert [h.to_state for h in order.history] == [e[3] for e in expected]
        assert all(h.at is not None for h in order.history)


def test_actions_are_accepted_as_enum_members(shop: Runtime) -> None:
    order_id = new_order(shop)
    with shop.store.session() as session:
        moved = orders.transition(session, order_id, Action.SUBMIT, who(session, "dev"))
        session.commit()
        assert moved.state == "submitted"
        assert history(session, order_id)[-1][1] == "submit"


def test_reject_needs_a_reason_and_records_it(shop: Runtime) -> None:
    order_id = new_order(shop, ("submit", "dev"), ("deploy", "dev"), ("succeed", None))
    with shop.store.session() as session:
        tester = who(session, "tester")
        for blank in ("", "   "):
            with pytest.raises(TransitionRefused, match="reason"):
                orders.transition(session, order_id, "reject", tester, reason=blank)
        session.rollback()
        moved = orders.transition(session, order_id, "reject", tester,
                                  reason="优惠券金额算错了")
        session.commit()
        assert moved.state == "test:rejected"
    with shop.store.session() as session:
        assert history(session, order_id)[-1] == (
            "tester", "reject", "test:deployed", "test:rejected", "优惠券金额算错了")
        assert len(history(session, order_id)) == 5
    # a rejected order can be redeployed on the same stage
    with shop.store.session() as session:
        moved = orders.transition(session, order_id, "deploy", who(session, "dev"))
        session.commit()
        assert moved.state == "test:deploying"


REFUSALS = [
    # (moves to reach the state, action, actor, reason)
    ([], "pass", "tester", ""),
    ([], "deploy", "dev", ""),
    ([("submit", "dev")], "submit", "dev", ""),
    ([("submit", "dev"), ("deploy", "dev")], "deploy", "dev", ""),
    ([("submit", "dev"), ("deploy", "dev"), ("succeed", None)], "reject", "tester", ""),
    ([("submit", "dev"), ("deploy", "dev"), ("succeed", None), ("pass", "tester")],
     "release", "releaser", ""),
    ([("submit", "dev"), ("deploy", "dev"), ("succeed", None)], "fly", "owner", ""),
]


@pytest.mark.parametrize("moves,action,by,reason", REFUSALS,
                         ids=[f"{r[1]}-after-{len(r[0])}" for r in REFUSALS])
def test_a_refused_transition_changes_nothing(
    shop: Runtime, moves: list[tuple[str, str | None]], action: str, by: str, reason: str
) -> None:
    order_id = new_order(shop, *moves)
    before_state, before_version = state_of(shop, order_id)
    with shop.store.session() as session:
        before_history = history(session, order_id)
        with pytest.raises(TransitionRefused) as caught:
            orders.transition(session, order_id, action, who(session, by), reason=reason)
        message = str(caught.value)
        assert f"order {order_id}" in message
        assert action in message
        assert before_state in message, message
        assert (caught.value.state, caught.value.action) == (before_state, action)
        session.commit()  # even committing what is left writes nothing
    assert state_of(shop, order_id) == (before_state, before_version)
    with shop.store.session() as session:
        assert history(session, order_id) == before_history


def test_a_permission_refusal_names_the_needed_role(shop: Runtime) -> None:
    order_id = new_order(shop, ("submit", "dev"), ("deploy", "dev"), ("succeed", None))
    with shop.store.session() as session:
        with pytest.raises(PermissionDenied) as caught:
            orders.transition(session, order_id, "pass", who(session, "dev"))
        assert "tester" in str(caught.value) and f"order {order_id}" in str(caught.value)
        assert "tester" in caught.value.needed_roles
        with pytest.raises(PermissionDenied) as caught:
            orders.transition(session, order_id, "rollback", who(session, "tester"))
        assert "releaser" in str(caught.value)
        assert "releaser" in caught.value.needed_roles
        session.commit()
    assert state_of(shop, order_id) == ("test:deployed", 4)
    with shop.store.session() as session:
        assert len(history(session, order_id)) == 4
        # the owner and a site admin may take any person's action
        moved = orders.transition(session, order_id, "pass", who(session, "owner"))
        assert moved.state == "test:passed"
        moved = orders.transition(session, order_id, "deploy", who(session, None))
        assert moved.state == "staging:deploying"
        session.commit()
        assert [h[0] for h in history(session, order_id)[-2:]] == ["owner", "admin"]


def test_later_stages_need_a_releaser(shop: Runtime) -> None:
    order_id = new_order(shop, ("submit", "dev"), ("deploy", "dev"), ("succeed", None),
                         ("pass", "tester"))
    with shop.store.session() as session:
        with pytest.raises(PermissionDenied, match="releaser") as caught:
            orders.transition(session, order_id, "deploy", who(session, "dev"))
        assert "releaser" in caught.value.needed_roles
    assert state_of(shop, order_id) == ("test:passed", 5)


@pytest.mark.parametrize("action", ["succeed", "fail"])
def test_a_person_cannot_report_the_engine_s_result(shop: Runtime, action: str) -> None:
    order_id = new_order(shop, ("submit", "dev"), ("deploy", "dev"))
    with shop.store.session() as session:
        for person in ("dev", "owner", None):  # not even the owner or the admin
            with pytest.raises(PermissionDenied, match="deploy engine"):
                orders.transition(session, order_id, action, who(session, person))
        session.commit()
    assert state_of(shop, order_id) == ("test:deploying", 3)
    with shop.store.session() as session:
        moved = orders.transition(session, order_id, action, None)
        session.commit()
        assert moved.state == ("test:deployed" if action == "succeed" else "test:failed")
        assert history(session, order_id)[-1][:2] == ("system", action)


def test_cancel_works_before_done(shop: Runtime) -> None:
    draft = new_order(shop, ("cancel", "dev"))
    deployed = new_order(shop, ("submit", "dev"), ("deploy", "dev"), ("succeed", None),
                         ("cancel", "releaser"))
    assert state_of(shop, draft)[0] == "cancelled"
    assert state_of(shop, deployed)[0] == "cancelled"
    with shop.store.session() as session:
        assert history(session, draft)[-1] == ("dev", "cancel", "draft", "cancelled", "")
        assert history(session, deployed)[-1][1:4] == ("cancel", "test:deployed", "cancelled")
        # a cancelled order stays cancelled
        with pytest.raises(TransitionRefused, match="cancelled"):
            orders.transition(session, draft, "submit", who(session, "dev"))


def test_cancel_is_refused_to_a_tester_and_after_done(shop: Runtime) -> None:
    order_id = new_order(shop, ("submit", "dev"))
    with shop.store.session() as session:
        with pytest.raises(PermissionDenied):
            orders.transition(session, order_id, "cancel", who(session, "tester"))
    done = new_order(shop, ("submit", "dev"), ("deploy", "dev"), ("succeed", None),
                     ("pass", "tester"), ("deploy", "releaser"), ("succeed", None),
                     ("pass", "tester"), ("release", "releaser"), ("succeed", None))
    assert state_of(shop, done) == ("done", 10)
    with shop.store.session() as session:
        for by in ("dev", "owner", None):
            with pytest.raises(TransitionRefused) as caught:
                orders.transition(session, done, "cancel", who(session, by))
            assert "done" in str(caught.value) and f"order {done}" in str(caught.value)
        session.commit()
    assert state_of(shop, done) == ("done", 10)
    with shop.store.session() as session:
        assert len(history(session, done)) == 10


def test_an_unknown_order_is_not_found(shop: Runtime) -> None:
    with shop.store.session() as session:
        with pytest.raises(NotFound, match="order 4242 does not exist") as caught:
            orders.transition(session, 4242, "submit", who(session, "dev"))
        assert (caught.value.kind, caught.value.key) == ("order", 4242)
        with pytest.raises(NotFound):
            orders.get_order(session, 4242)


def test_list_orders_filters_by_project_and_state(shop: Runtime) -> None:
    first = new_order(shop, ("submit", "dev"))
    second = new_order(shop)
    with shop.store.session() as session:
        assert [o.id for o in orders.list_orders(session)] == [first, second]
        assert [o.id for o in orders.list_orders(session, project="shop")] == [first, second]
        assert [o.id for o in orders.list_orders(session, state="draft")] == [second]
        assert orders.list_orders(session, project="other") == []
        with pytest.raises(NotFound):
            orders.list_orders(session, project="nowhere")


# -- two writers ----------------------------------------------------------------------------


def test_a_stale_session_cannot_move_the_order_again(shop: Runtime) -> None:
    """Both sessions saw `submitted`; A deploys and commits; B's deploy is refused."""
    order_id = new_order(shop, ("submit", "dev"))
    with shop.store.session() as a, shop.store.session() as b:
        assert orders.get_order(a, order_id).state == "submitted"
        assert orders.get_order(b, order_id).state == "submitted"
        dev_a, dev_b = who(a, "dev"), who(b, "dev")

        orders.transition(a, order_id, "deploy", dev_a)
        a.commit()

        with pytest.raises(TransitionRefused) as caught:
            orders.transition(b, order_id, "deploy", dev_b)
        assert f"order {order_id}" in str(caught.value)
        b.rollback()

    assert state_of(shop, order_id) == ("test:deploying", 3)
    with shop.store.session() as session:
        moves = [h for h in history(session, order_id) if h[1] == "deploy"]
        assert moves == [("dev", "deploy", "submitted", "test:deploying", "")]


def test_a_second_writer_waits_for_the_first_and_is_refused(shop: Runtime) -> None:
    """A holds the order (uncommitted); B, starting fresh, waits, then sees A's move."""
    order_id = new_order(shop, ("submit", "dev"))
    outcome: list[BaseException | Order] = []

    def writer_b() -> None:
        try:
            with shop.store.session() as b:
                outcome.append(orders.transition(b, order_id, "deploy", who(b, "dev")))
                b.commit()
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    with shop.store.session() as a:
        orders.transition(a, order_id, "deploy", who(a, "dev"))
        thread = threading.Thread(target=writer_b)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), f"B did not wait for A's lock: {outcome}"
        a.commit()
    thread.join(timeout=20)
    assert not thread.is_alive()

    [result] = outcome
    assert isinstance(result, TransitionRefused), result
    assert isinstance(result, GoliveError)
    assert state_of(shop, order_id) == ("test:deploying", 3)
    with shop.store.session() as session:
        assert [h[1] for h in history(session, order_id)] == ["create", "submit", "deploy"]
