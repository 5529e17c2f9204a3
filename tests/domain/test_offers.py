"""The actions each role is offered on an order, and the orders that wait for them, as
tables over a 3-stage project. Every offer must also be allowed by the machine."""

from __future__ import annotations

import pytest

from golive.domain.offers import SQL_APPROVAL, Facts, Offer, offers, waiting
from golive.domain.workflow import Actor, decide

STAGES = ("test", "staging", "prod")
DEV, TESTER, RELEASER, OWNER = "developer", "tester", "releaser", "owner"


def actor(*roles: str, admin: bool = False) -> Actor:
    return Actor("someone", frozenset(roles), is_admin=admin)


def names(found: list[Offer]) -> list[str]:
    """``operation[:stage][:kind]`` of each offer, as the tables spell them."""
    return [":".join(part for part in (o.operation.split(".")[1], o.stage, o.kind,
                                       o.statement) if part) for o in found]


OFFERS = [
    # state, roles, expected offers
    ("draft", (DEV,), ["update", "submit", "cancel"]),
    ("draft", (TESTER,), []),
    ("draft", (RELEASER,), ["cancel"]),
    ("submitted", (DEV,), ["deploy:test:iterative", "update", "cancel"]),
    ("submitted", (TESTER,), []),
    ("submitted", (RELEASER,), ["cancel"]),
    ("test:deploying", (DEV,), []),
    ("test:deploying", (OWNER,), []),
    ("test:deployed", (DEV,), ["deploy:test:iterative", "deploy:test:full", "cancel"]),
    ("test:deployed", (TESTER,), ["pass:test", "reject:test"]),
    ("test:deployed", (RELEASER,), ["rollback:test", "cancel"]),
    ("test:failed", (DEV,), ["deploy:test:iterative", "deploy:test:full", "cancel"]),
    ("test:failed", (TESTER,), []),
    ("test:rejected", (DEV,), ["deploy:test:iterative", "deploy:test:full", "cancel"]),
    ("test:passed", (DEV,), ["cancel"]),
    ("test:passed", (RELEASER,), ["deploy:staging:iterative", "rollback:test", "cancel"]),
    ("staging:deployed", (TESTER,), ["pass:staging", "reject:staging"]),
    ("staging:deployed", (DEV,), ["cancel"]),
    ("staging:failed", (RELEASER,), ["deploy:staging:iterative", "deploy:staging:full",
                                     "rollback:staging", "cancel"]),
    ("staging:passed", (RELEASER,), ["release:prod:iterative", "rollback:staging", "cancel"]),
    ("staging:passed", (TESTER,), []),
    ("prod:failed", (RELEASER,), ["release:prod:iterative", "release:prod:full",
                                  "rollback:prod", "cancel"]),
    ("done", (RELEASER,), ["rollback:prod"]),
    ("done", (DEV, TESTER), []),
    ("cancelled", (OWNER,), []),
    ("test:deployed", (OWNER,), ["deploy:test:iterative", "deploy:test:full", "pass:test",
                                 "reject:test", "rollback:test", "cancel"]),
    ("test:deployed", (), []),
]


@pytest.mark.parametrize(("state", "roles", "expected"), OFFERS)
def test_each_role_is_offered_what_the_machine_allows(state: str, roles: tuple[str, ...],
                                                      expected: list[str]) -> None:
    found = offers(state, actor(*roles), STAGES, Facts())
    assert names(found) == expected
    for offer in found:
        action = offer.operation.split(".")[1]
        if action in ("deploy", "release", "pass", "rollback", "submit", "cancel"):
            assert decide(state, action, actor(*roles), STAGES).allowed


def test_a_site_admin_is_offered_what_an_owner_is() -> None:
    for state, _roles, _expected in OFFERS:
        assert offers(state, actor(admin=True), STAGES, Facts()) == \
            offers(state, actor(OWNER), STAGES, Facts())


LEDGER = [
    # facts, roles, expected extra offers (beyond the moves of test:deployed)
    (Facts(sql_awaiting_approval=True), (RELEASER,), ["approve_sql"]),
    (Facts(sql_awaiting_approval=True), (DEV,), []),
    (Facts(sql_awaiting_approval=True), (TESTER,), []),
    (Facts(unknown_statements=("api:1", "api:3")), (RELEASER,),
     ["resolve:api:1", "resolve:api:3"]),
    (Facts(unknown_statements=("api:1",)), (DEV,), []),
    (Facts(paused_stage="test"), (DEV,), ["resume:test"]),
    (Facts(paused_stage="test"), (RELEASER,), []),
    (Facts(paused_stage="staging"), (RELEASER,), ["resume:staging"]),
    (Facts(paused_stage="staging"), (DEV,), []),
]


@pytest.mark.parametrize(("facts", "roles", "expected"), LEDGER)
def test_ledger_actions_need_their_fact_and_permission(facts: Facts, roles: tuple[str, ...],
                                                       expected: list[str]) -> None:
    plain = names(offers("test:deployed", actor(*roles), STAGES, Facts()))
    found = names(offers("test:deployed", actor(*roles), STAGES, facts))
    assert [n for n in found if n not in plain] == expected


def test_a_blocked_deploy_is_offered_as_blocked() -> None:
    found = offers("submitted", actor(DEV), STAGES, Facts(blocked=SQL_APPROVAL))
    assert found[0] == Offer("order.deploy", stage="test", kind="iterative",
                             blocked=SQL_APPROVAL)


WAITING = [
    # state, roles, filed by me, facts, expected duties
    ("draft", (DEV,), True, Facts(), ["submit"]),
    ("draft", (DEV,), False, Facts(), []),
    ("submitted", (DEV,), True, Facts(), ["deploy"]),
    ("submitted", (DEV,), False, Facts(), []),
    ("test:deployed", (TESTER,), False, Facts(), ["test"]),
    ("test:deployed", (DEV,), True, Facts(), []),
    ("test:deployed", (RELEASER,), False, Facts(), []),
    ("test:passed", (RELEASER,), False, Facts(), ["deploy"]),
    ("test:passed", (TESTER,), False, Facts(), []),
    ("staging:deployed", (TESTER,), False, Facts(), ["test"]),
    ("staging:passed", (RELEASER,), False, Facts(), ["release"]),
    ("staging:passed", (DEV,), True, Facts(), []),
    ("test:failed", (DEV,), True, Facts(), ["fix"]),
    ("test:failed", (DEV,), False, Facts(), []),
    ("staging:rejected", (DEV,), True, Facts(), ["fix"]),
    ("staging:rejected", (RELEASER,), False, Facts(), []),
    ("submitted", (RELEASER,), False, Facts(sql_awaiting_approval=True), ["approve_sql"]),
    ("submitted", (DEV,), True, Facts(sql_awaiting_approval=True, blocked=SQL_APPROVAL), []),
    ("test:deployed", (RELEASER,), False, Facts(unknown_statements=("api:1",)),
     ["resolve_sql"]),
    ("test:deploying", (DEV,), True, Facts(paused_stage="test"), ["resume"]),
    ("done", (RELEASER,), False, Facts(), []),
    ("test:deployed", (OWNER,), False, Facts(), ["test"]),
]


@pytest.mark.parametrize(("state", "roles", "mine", "facts", "expected"), WAITING)
def test_an_order_waits_for_the_role_whose_step_is_next(
        state: str, roles: tuple[str, ...], mine: bool, facts: Facts,
        expected: list[str]) -> None:
    found = waiting(state, actor(*roles), STAGES, Facts(**{**facts.__dict__,
                                                           "filed_by_me": mine}))
    assert found == expected


def test_nothing_waits_for_a_site_admin_without_a_role() -> None:
    assert waiting("test:deployed", actor(admin=True), STAGES, Facts()) == []
    assert waiting("staging:passed", actor(admin=True), STAGES, Facts()) == []
