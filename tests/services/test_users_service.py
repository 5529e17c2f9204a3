"""Users, the acting user and project membership, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from golive.domain.roles import ALL_ROLES
from golive.errors import InputError, NotFound, PermissionDenied
from golive.services import users
from golive.services.runtime import Runtime
from golive.store.models import Member, Project, User


def user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def member_rows(session: Session) -> list[tuple[str, str, str]]:
    rows = session.execute(
        select(Project.name, User.name, Member.role)
        .join(Member.project).join(Member.user).order_by(User.name, Member.role))
    return [tuple(row) for row in rows]  # type: ignore[misc]


def make_project(session: Session) -> dict[str, User]:
    """Project shop with owner olga and developer dave; returns the users by name."""
    admin = users.ensure_admin(session)
    olga = users.add_user(session, admin, "olga")
    dave = users.add_user(session, admin, "dave")
    carol = users.add_user(session, admin, "carol")
    project = Project(name="shop", stages=["test", "staging", "prod"])
    project.members.append(Member(user=olga, role="owner"))
    project.members.append(Member(user=dave, role="developer"))
    session.add(project)
    session.commit()
    return {"admin": admin, "olga": olga, "dave": dave, "carol": carol}


def test_ensure_admin_creates_the_admin_once(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        session.commit()
        assert (admin.name, admin.is_admin, admin.password_hash) == ("admin", True, None)
        first_id = admin.id
    with runtime.store.session() as session:
        again = users.ensure_admin(session)
        session.commit()
        assert again.id == first_id and again.name == "admin"
        assert user_count(session) == 1
        stored = session.scalars(select(User)).one()
        assert (stored.name, stored.is_admin, stored.password_hash) == ("admin", True, None)


def test_ensure_admin_finds_an_admin_with_another_name(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        session.add(User(name="root", is_admin=True))
        session.commit()
        assert users.ensure_admin(session).name == "root"
        assert user_count(session) == 1


def test_ensure_admin_refuses_a_store_with_users_but_no_admin(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        session.add(User(name="dave"))
        session.commit()
        with pytest.raises(InputError, match="no admin"):
            users.ensure_admin(session)
        assert user_count(session) == 1


def test_acting_user(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        admin = users.acting_user(session, None)
        assert admin.name == "admin" and admin.is_admin
        assert users.acting_user(session, "").id == admin.id
        dave = users.add_user(session, admin, "dave")
        session.commit()
        assert users.acting_user(session, "dave").id == dave.id
        with pytest.raises(NotFound, match="user ghost does not exist") as caught:
            users.acting_user(session, "ghost")
        assert (caught.value.kind, caught.value.key) == ("user", "ghost")


def test_add_user(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        lin = users.add_user(session, admin, "lin", email="lin@example.com", mobile="138",
                             display_name="林", language="zh_CN")
        root2 = users.add_user(session, admin, "root2", admin=True)
        session.commit()
    with runtime.store.session() as session:
        stored = session.get(User, lin.id)
        assert stored is not None
        assert (stored.name, stored.email, stored.mobile, stored.display_name,
                stored.language, stored.is_admin) == (
            "lin", "lin@example.com", "138", "林", "zh_CN", False)
        second_admin = session.get(User, root2.id)
        assert second_admin is not None and second_admin.is_admin
        assert second_admin.display_name == "root2"  # defaults to the name


def test_add_user_needs_an_admin(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        dave = users.add_user(session, admin, "dave")
        session.commit()
        with pytest.raises(PermissionDenied, match="needs a site admin; dave is not one") as caught:
            users.add_user(session, dave, "eve")
        assert caught.value.needed_roles == ("admin",)
        session.rollback()
        assert user_count(session) == 2


def test_add_user_refuses_a_duplicate(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        users.add_user(session, admin, "dave")
        session.commit()
        with pytest.raises(InputError, match="user dave already exists"):
            users.add_user(session, admin, "dave", email="other@example.com")
        session.rollback()
        assert user_count(session) == 2


BAD_NAMES = ["", "has space", "-dash", ".dot", "bad/slash", "semi;colon", "a" * 64, "优惠券"]


def test_add_user_refuses_a_bad_name(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        for name in BAD_NAMES:
            with pytest.raises(InputError, match="not a valid name"):
                users.add_user(session, admin, name)
        assert user_count(session) == 1
        assert users.add_user(session, admin, "a" * 63).name == "a" * 63


def test_add_user_refuses_an_unknown_language(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        with pytest.raises(InputError, match="language 'fr'"):
            users.add_user(session, admin, "dave", language="fr")
        assert user_count(session) == 1


def test_add_member_by_owner_and_admin(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        people = make_project(session)
        member = users.add_member(session, people["olga"], "shop", "carol", "tester")
        assert (member.project.name, member.user.name, member.role) == ("shop", "carol", "tester")
        # the role is parsed: case and blanks do not matter
        users.add_member(session, people["admin"], "shop", "carol", " Releaser ")
        session.commit()
    with runtime.store.session() as session:
        assert member_rows(session) == [
            ("shop", "carol", "releaser"), ("shop", "carol", "tester"),
            ("shop", "dave", "developer"), ("shop", "olga", "owner")]
        carol = users.acting_user(session, "carol")
        shop = users.get_project(session, "shop")
        assert users.project_roles(session, carol, shop) == {"tester", "releaser"}


def test_add_member_needs_the_owner(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        people = make_project(session)
        with pytest.raises(PermissionDenied, match="needs the role owner; dave") as caught:
            users.add_member(session, people["dave"], "shop", "carol", "tester")
        assert caught.value.needed_roles == ("owner",)
        # a user with no role at all is refused too
        with pytest.raises(PermissionDenied):
            users.add_member(session, people["carol"], "shop", "carol", "owner")
        session.rollback()
        assert len(member_rows(session)) == 2


def test_add_member_refuses_an_unknown_role(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        people = make_project(session)
        with pytest.raises(InputError) as caught:
            users.add_member(session, people["olga"], "shop", "carol", "boss")
        message = str(caught.value)
        assert "'boss'" in message
        for role in ALL_ROLES:
            assert role in message
        assert len(member_rows(session)) == 2


def test_add_member_refuses_unknown_user_and_project(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        people = make_project(session)
        with pytest.raises(NotFound, match="user ghost does not exist"):
            users.add_member(session, people["olga"], "shop", "ghost", "tester")
        with pytest.raises(NotFound, match="project nowhere does not exist"):
            users.add_member(session, people["admin"], "nowhere", "carol", "tester")


def test_adding_the_same_member_twice_keeps_one_row(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        people = make_project(session)
        first = users.add_member(session, people["olga"], "shop", "carol", "tester")
        session.commit()
    with runtime.store.session() as session:
        olga = users.acting_user(session, "olga")
        again = users.add_member(session, olga, "shop", "carol", "TESTER")
        session.commit()
        assert again.id == first.id
        assert member_rows(session).count(("shop", "carol", "tester")) == 1
        assert len(member_rows(session)) == 3
