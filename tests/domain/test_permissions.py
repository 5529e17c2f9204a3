"""Who may take each action that is not a transition, as one table written out by hand.

Every ``Permission`` × every kind of actor → allowed (Y) or refused (-), with the
roles a refusal must name. The table is the rule as written down, not computed from
``NEEDS``: a change to ``NEEDS`` or ``ADMIN_ONLY`` that is not made here too fails,
and so does a new permission without a row.
"""

from __future__ import annotations

import pytest

from golive.domain.permissions import Permission, check
from golive.domain.workflow import Actor

DEV, TESTER, RELEASER, OWNER = "developer", "tester", "releaser", "owner"

ACTORS: dict[str, Actor] = {
    "developer": Actor("dave", frozenset({DEV})),
    "tester": Actor("tina", frozenset({TESTER})),
    "releaser": Actor("rita", frozenset({RELEASER})),
    "owner": Actor("olga", frozenset({OWNER})),
    "admin": Actor("root", is_admin=True),
    "no-role": Actor("nick"),
    "dev+tester": Actor("duo", frozenset({DEV, TESTER})),
}
COLUMNS = tuple(ACTORS)

# (permission, extra roles the caller computes) → (allowed per column, roles a refusal names)
TABLE: dict[tuple[Permission, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {
    #                                               dev tst rel own adm none dev+tst
    (Permission.VIEW, ()):                         ("Y   Y   Y   Y   Y   -    Y",
                                                    (DEV, TESTER, RELEASER, OWNER)),
    (Permission.CREATE_ORDER, ()):                 ("Y   -   -   Y   Y   -    Y", (DEV, OWNER)),
    (Permission.EDIT_ORDER, ()):                   ("Y   -   -   Y   Y   -    Y", (DEV, OWNER)),
    (Permission.APPROVE_SQL, ()):                  ("-   -   Y   Y   Y   -    -",
                                                    (RELEASER, OWNER)),
    (Permission.RESOLVE_SQL, ()):                  ("-   -   Y   Y   Y   -    -",
                                                    (RELEASER, OWNER)),
    # resume_batches: the stage's deployer, which the caller passes as ``extra``
    (Permission.RESUME_BATCHES, ()):               ("-   -   -   Y   Y   -    -", (OWNER,)),
    (Permission.RESUME_BATCHES, (DEV,)):           ("Y   -   -   Y   Y   -    Y", (DEV, OWNER)),
    (Permission.RESUME_BATCHES, (RELEASER,)):      ("-   -   Y   Y   Y   -    -",
                                                    (RELEASER, OWNER)),
    (Permission.RELEASE_LANE, ()):                 ("-   Y   -   Y   Y   -    Y",
                                                    (TESTER, OWNER)),
    (Permission.TAKE_OVER_LANE, ()):               ("-   Y   -   Y   Y   -    Y",
                                                    (TESTER, OWNER)),
    (Permission.ACCEPT_UNVERIFIED, ()):            ("-   -   Y   Y   Y   -    -",
                                                    (RELEASER, OWNER)),
    (Permission.MANAGE_MEMBERS, ()):               ("-   -   -   Y   Y   -    -", (OWNER,)),
    (Permission.MANAGE_CHANNELS, ()):              ("-   -   -   Y   Y   -    -", (OWNER,)),
    (Permission.MANAGE_USERS, ()):                 ("-   -   -   -   Y   -    -", ("admin",)),
    (Permission.APPLY_CONFIG, ()):                 ("-   -   -   -   Y   -    -", ("admin",)),
    (Permission.CONFIGURE_PROJECT, ()):            ("-   -   -   Y   Y   -    -", (OWNER,)),
    (Permission.EXPORT_CONFIG, ()):                ("-   -   -   -   Y   -    -", ("admin",)),
    (Permission.EXPORT_SECRETS, ()):               ("-   -   -   -   Y   -    -", ("admin",)),
    (Permission.TRUST_HOST_KEY, ()):               ("-   -   -   -   Y   -    -", ("admin",)),
    (Permission.READ_AUDIT, ()):                   ("-   -   -   Y   Y   -    -", (OWNER,)),
}

CASES = []
for (permission, extra), (grid, needed) in TABLE.items():
    marks = grid.split()
    assert len(marks) == len(COLUMNS) and set(marks) <= {"Y", "-"}, (permission, grid)
    for column, mark in zip(COLUMNS, marks, strict=True):
        label = f"{permission.value}{'+' + '+'.join(extra) if extra else ''}-{column}"
        CASES.append(pytest.param(permission, extra, column, mark == "Y", needed, id=label))


def test_the_table_has_a_row_for_every_permission() -> None:
    assert {permission for permission, _ in TABLE} == set(Permission)


@pytest.mark.parametrize("permission,extra,column,allowed,needed", CASES)
def test_who_may_take_each_permission(permission: Permission, extra: tuple[str, ...],
                                      column: str, allowed: bool,
                                      needed: tuple[str, ...]) -> None:
    actor = ACTORS[column]
    decision = check(permission, actor, f"doing {permission.value}", extra)
    assert decision.allowed is allowed, decision.reason
    assert decision.needed_roles == needed
    if allowed:
        assert (decision.reason, decision.permission_refused) == ("", False)
        return
    assert decision.permission_refused is True
    assert decision.reason.startswith(f"doing {permission.value} needs ")
    if needed == ("admin",):
        assert f"needs a site admin; {actor.name} is not one" in decision.reason
    else:
        assert f"needs the role {' or '.join(needed)}; {actor.name} has " in decision.reason
        held = ", ".join(sorted(actor.roles)) or "no role in this project"
        assert decision.reason.endswith(f"has {held}")


@pytest.mark.parametrize("permission", list(Permission), ids=str)
def test_an_admin_who_is_also_a_member_is_still_an_admin(permission: Permission) -> None:
    actor = Actor("root", frozenset({TESTER}), is_admin=True)
    assert check(permission, actor, "anything").allowed


@pytest.mark.parametrize("permission", list(Permission), ids=str)
def test_check_does_not_raise_for_an_unknown_role(permission: Permission) -> None:
    """A role name the domain does not know (old data, a typo) grants nothing."""
    decision = check(permission, Actor("x", frozenset({"boss"})), "anything")
    assert not decision.allowed and decision.permission_refused
