"""The order state machine as tables: every (state, action, role) of a 3-stage project.

ALLOWED lists every move the machine allows, with the roles that may make it
(owner and site admin may make every human move; succeed and fail are the
system's). Every other (state, action) must be refused by the state rule.
"""

from __future__ import annotations

import itertools

import pytest

from golive.domain.workflow import (
    SYSTEM_ACTOR,
    Action,
    Actor,
    all_states,
    decide,
)

STAGES = ("test", "staging", "prod")
DEV, TESTER, RELEASER = "developer", "tester", "releaser"

ALLOWED: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("draft", "submit"): ("submitted", frozenset({DEV})),
    ("draft", "cancel"): ("cancelled", frozenset({DEV, RELEASER})),
    ("submitted", "deploy"): ("test:deploying", frozenset({DEV})),
    ("submitted", "cancel"): ("cancelled", frozenset({DEV, RELEASER})),
    ("done", "rollback"): ("prod:rolled_back", frozenset({RELEASER})),
}
SYSTEM_MOVES: dict[tuple[str, str], str] = {}

for stage, nxt in zip(STAGES, (*STAGES[1:], None), strict=True):
    last = nxt is None
    deployer = frozenset({DEV}) if stage == "test" else frozenset({RELEASER})
    redeploy_action = "release" if last else "deploy"
    SYSTEM_MOVES[(f"{stage}:deploying", "succeed")] = "done" if last else f"{stage}:deployed"
    SYSTEM_MOVES[(f"{stage}:deploying", "fail")] = f"{stage}:failed"
    for phase in ("deployed", "failed", "rejected", "rolled_back"):
        ALLOWED[(f"{stage}:{phase}", redeploy_action)] = (f"{stage}:deploying", deployer)
    ALLOWED[(f"{stage}:deployed", "pass")] = (f"{stage}:passed", frozenset({TESTER}))
    ALLOWED[(f"{stage}:deployed", "reject")] = (f"{stage}:rejected", frozenset({TESTER}))
    for phase in ("deployed", "failed", "rejected", "passed"):
        ALLOWED[(f"{stage}:{phase}", "rollback")] = (f"{stage}:rolled_back",
                                                     frozenset({RELEASER}))
    for phase in ("deployed", "failed", "rejected", "passed", "rolled_back"):
        ALLOWED[(f"{stage}:{phase}", "cancel")] = ("cancelled", frozenset({DEV, RELEASER}))
    if not last:
        next_action = "release" if nxt == STAGES[-1] else "deploy"
        ALLOWED[(f"{stage}:passed", next_action)] = (f"{nxt}:deploying",
                                                    frozenset({RELEASER}))

ROLES = ("developer", "tester", "releaser", "owner")
PEOPLE = [Actor(f"as-{r}", frozenset({r})) for r in ROLES]
PEOPLE += [Actor("nobody"), Actor("site-admin", is_admin=True)]
CELLS = list(itertools.product(all_states(STAGES), [a.value for a in Action]))


def _expected_for_person(state: str, action: str, actor: Actor) -> str | None:
    allowed = ALLOWED.get((state, action))
    if allowed is None:
        return None
    target, roles = allowed
    if actor.is_admin or "owner" in actor.roles or actor.roles & roles:
        return target
    return None


@pytest.mark.parametrize(("state", "action"), CELLS)
def test_every_cell_for_every_role(state: str, action: str) -> None:
    reason = "broken" if action == "reject" else ""
    for actor in PEOPLE:
        decision = decide(state, action, actor, STAGES, reason=reason)
        expected = _expected_for_person(state, action, actor)
        if expected is None:
            assert not decision.allowed, (state, action, actor)
            assert decision.reason, "a refusal always says why"
        else:
            assert decision.allowed, (state, action, actor, decision.reason)
            assert decision.target == expected
    system = decide(state, action, SYSTEM_ACTOR, STAGES)
    assert system.allowed == ((state, action) in SYSTEM_MOVES), (state, action)
    if system.allowed:
        assert system.target == SYSTEM_MOVES[(state, action)]


def test_the_table_covers_moves_out_of_every_live_state() -> None:
    sources = {s for s, _ in ALLOWED} | {s for s, _ in SYSTEM_MOVES}
    assert set(all_states(STAGES)) - sources == {"cancelled"}


@pytest.mark.parametrize(
    ("state", "action", "actor", "reason", "needle"),
    [
        ("draft", "pass", Actor("t", frozenset({TESTER})), "", "only a deployed stage"),
        ("test:deployed", "pass", Actor("d", frozenset({DEV})), "", "needs the role tester"),
        ("test:deployed", "reject", Actor("t", frozenset({TESTER})), " ", "needs a reason"),
        ("staging:passed", "deploy", Actor("r", frozenset({RELEASER})), "", "use release"),
        ("test:passed", "release", Actor("r", frozenset({RELEASER})), "", "last stage prod"),
        ("test:deploying", "cancel", Actor("d", frozenset({DEV})), "", "wait for it to end"),
        ("done", "cancel", Actor("o", frozenset({"owner"})), "", "nothing more"),
        ("test:deploying", "succeed", Actor("o", frozenset({"owner"})), "", "deploy engine"),
        ("submitted", "deploy", Actor("x"), "", "no role in this project"),
        ("draft", "explode", Actor("o", frozenset({"owner"})), "", "unknown action"),
    ],
)
def test_refusals_say_why(state: str, action: str, actor: Actor, reason: str, needle: str) -> None:
    decision = decide(state, action, actor, STAGES, reason=reason)
    assert not decision.allowed
    assert needle in decision.reason


def test_permission_refusal_is_flagged_and_names_the_roles() -> None:
    decision = decide("test:deployed", "pass", Actor("d", frozenset({DEV})), STAGES)
    assert decision.permission_refused
    assert decision.needed_roles == ("tester", "owner")


def test_the_only_stage_is_released_by_a_releaser() -> None:
    releaser, developer = Actor("r", frozenset({RELEASER})), Actor("d", frozenset({DEV}))
    assert decide("submitted", "release", releaser, ("prod",)).target == "prod:deploying"
    assert decide("submitted", "release", developer, ("prod",)).permission_refused


def test_stage_argument_must_match_the_natural_stage() -> None:
    releaser = Actor("r", frozenset({RELEASER}))
    assert decide("test:passed", "deploy", releaser, STAGES, stage="staging").allowed
    wrong = decide("test:passed", "deploy", releaser, STAGES, stage="prod")
    assert not wrong.allowed and "can be deployed on staging" in wrong.reason
    # a passed stage asked for by name is verified again (by its deployer)
    again = decide("staging:passed", "deploy", releaser, STAGES, stage="staging")
    assert (again.allowed, again.target) == (True, "staging:deploying")
    developer = Actor("d", frozenset({DEV}))
    assert decide("test:passed", "deploy", developer, STAGES, stage="test").target == \
        "test:deploying"
    assert decide("staging:passed", "deploy", developer, STAGES, stage="staging"
                  ).permission_refused
    unknown = decide("test:passed", "deploy", releaser, STAGES, stage="qa")
    assert not unknown.allowed and "not one of this project's stages" in unknown.reason


@pytest.mark.parametrize(
    ("stages", "walk"),
    [
        (("prod",), [("submit", "submitted"), ("release", "prod:deploying"),
                     ("succeed", "done")]),
        (("dev", "prod"), [("submit", "submitted"), ("deploy", "dev:deploying"),
                           ("succeed", "dev:deployed"), ("pass", "dev:passed"),
                           ("release", "prod:deploying"), ("fail", "prod:failed"),
                           ("release", "prod:deploying"), ("succeed", "done")]),
        (("t", "qa", "stg", "prod"), [("submit", "submitted"), ("deploy", "t:deploying"),
                                      ("succeed", "t:deployed"), ("pass", "t:passed"),
                                      ("deploy", "qa:deploying"), ("succeed", "qa:deployed"),
                                      ("pass", "qa:passed"), ("deploy", "stg:deploying"),
                                      ("succeed", "stg:deployed"), ("pass", "stg:passed"),
                                      ("release", "prod:deploying"), ("succeed", "done")]),
    ],
)
def test_the_machine_is_generic_over_the_stage_list(
    stages: tuple[str, ...], walk: list[tuple[str, str]]
) -> None:
    owner = Actor("o", frozenset({"owner"}))
    state = "draft"
    for action, expected in walk:
        actor = SYSTEM_ACTOR if action in ("succeed", "fail") else owner
        decision = decide(state, action, actor, stages)
        assert decision.allowed, (state, action, decision.reason)
        assert decision.target == expected
        state = decision.target
