"""The order's state machine (DESIGN §2), generic over a project's stage list.

States are ``draft``, ``submitted``, ``<stage>:<phase>``, ``done`` and ``cancelled``.
``decide`` is the one place that knows which action is allowed from which state
and by which role; it returns a ``Decision`` and never raises for a refusal.

Actions and who may take them (owner and site admin may take every human action):

* ``submit``   draft → submitted                                    developer
* ``deploy``   submitted → first:deploying                          developer
               X:passed → next:deploying (next not the last stage)  releaser
               X:passed → X:deploying, when X is asked for by name  X's deployer
               (e.g. main moved since X verified the order)
               X:deployed|failed|rejected|rolled_back → X:deploying developer on the
                                                                    first stage,
                                                                    releaser later
* ``release``  the same moves onto the last stage                   releaser
* ``succeed``  X:deploying → X:deployed, or ``done`` on the last    system (the engine)
* ``fail``     X:deploying → X:failed                               system
* ``pass``     X:deployed → X:passed (not on the last stage)        tester
* ``reject``   X:deployed → X:rejected, a reason is required        tester
* ``rollback`` X:deployed|failed|rejected|passed → X:rolled_back,   releaser
               done → last:rolled_back
* ``cancel``   any state before done, except while deploying        developer, releaser

A project setting may act too: ``auto_promote`` deploys on the next stage after a
pass, ``auto_release`` releases after the pass on the stage before the last. Such
an actor (``automatic``) may take ``deploy`` and ``release``, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from golive.domain.roles import Role

DRAFT = "draft"
SUBMITTED = "submitted"
DONE = "done"
CANCELLED = "cancelled"


class Phase(StrEnum):
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    FAILED = "failed"
    PASSED = "passed"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"


class Action(StrEnum):
    SUBMIT = "submit"
    DEPLOY = "deploy"
    RELEASE = "release"
    SUCCEED = "succeed"
    FAIL = "fail"
    PASS = "pass"
    REJECT = "reject"
    ROLLBACK = "rollback"
    CANCEL = "cancel"


Move = tuple[str, tuple[str, ...]] | str
"""(target state, roles that may make the move), or why the state refuses it."""
Handler = Callable[[str, tuple[str, ...], str | None, str], Move]

SYSTEM = "system"
"""The actor of ``succeed`` and ``fail``: the deploy engine, not a person."""

SYSTEM_ACTIONS = frozenset({Action.SUCCEED, Action.FAIL})
AUTOMATIC_ACTIONS = frozenset({Action.DEPLOY, Action.RELEASE})
ROLLBACKABLE = frozenset({Phase.DEPLOYED, Phase.FAILED, Phase.REJECTED, Phase.PASSED})


@dataclass(frozen=True)
class Actor:
    """Who acts: a user's roles in the project, or the system."""

    name: str
    roles: frozenset[str] = frozenset()
    is_admin: bool = False
    automatic: bool = False
    """A project setting (auto_promote, auto_release) acting after a person's pass."""

    @property
    def is_system(self) -> bool:
        return self.name == SYSTEM


SYSTEM_ACTOR = Actor(SYSTEM)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    target: str = ""
    reason: str = ""
    needed_roles: tuple[str, ...] = ()
    permission_refused: bool = False


@dataclass(frozen=True)
class StageState:
    stage: str
    phase: Phase


def parse_state(state: str, stages: tuple[str, ...]) -> StageState | None:
    """The (stage, phase) of a ``stage:phase`` state; None for the other states."""
    if ":" not in state:
        return None
    stage, _, phase = state.partition(":")
    if stage not in stages:
        raise ValueError(f"state {state!r} names stage {stage!r}, not one of {stages}")
    return StageState(stage, Phase(phase))


def stage_state(stage: str, phase: Phase) -> str:
    return f"{stage}:{phase.value}"


def all_states(stages: tuple[str, ...]) -> list[str]:
    """Every state an order of a project with these stages can be in."""
    staged = [stage_state(s, p) for s in stages for p in Phase]
    return [DRAFT, SUBMITTED, *staged, DONE, CANCELLED]


def decide(
    state: str,
    action: str,
    actor: Actor,
    stages: tuple[str, ...],
    *,
    stage: str | None = None,
    reason: str = "",
    also: tuple[str, ...] = (),
) -> Decision:
    """May ``actor`` take ``action`` on an order in ``state``? And to which state?

    ``stage`` is the stage a deploy or rollback targets (default: the natural one).
    ``also`` are roles a rule outside the machine lets make this move too (a tester
    taking over a lane deploys onto it).
    The state rule is checked first: asking for an impossible move is answered
    with that, whoever asks.
    """
    try:
        act = Action(action)
    except ValueError:
        return Decision(False, reason=f"unknown action {action!r}")
    move = _move(state, act, stages, stage, reason)
    if isinstance(move, str):
        return Decision(False, reason=move)
    target, needed = move
    return _check_actor(state, act, actor, target, tuple(dict.fromkeys([*needed, *also])))


def _check_actor(
    state: str, act: Action, actor: Actor, target: str, needed: tuple[str, ...]
) -> Decision:
    if act in SYSTEM_ACTIONS:
        if actor.is_system:
            return Decision(True, target)
        return Decision(
            False,
            reason=f"{act.value} is reported by the deploy engine, not taken by a person",
            permission_refused=True,
        )
    if actor.automatic and act in AUTOMATIC_ACTIONS:
        return Decision(True, target, needed_roles=needed)
    if actor.is_admin or Role.OWNER.value in actor.roles or actor.roles & set(needed):
        return Decision(True, target, needed_roles=needed)
    wanted = " or ".join([*needed, Role.OWNER.value])
    return Decision(
        False,
        reason=f"{act.value} from {state} needs the role {wanted}; {actor.name} has "
        + (", ".join(sorted(actor.roles)) or "no role in this project"),
        needed_roles=(*needed, Role.OWNER.value),
        permission_refused=True,
    )


def _move(
    state: str, act: Action, stages: tuple[str, ...], stage: str | None, reason: str
) -> Move:
    """(target state, roles that may do it), or why the state does not allow it."""
    if not stages:
        return "the project has no stages"
    if stage is not None and stage not in stages:
        return f"stage {stage!r} is not one of this project's stages: {', '.join(stages)}"
    if state in (DONE, CANCELLED) and not (state == DONE and act is Action.ROLLBACK):
        return f"the order is {state}; nothing more can be done with it"
    handler = _HANDLERS[act]
    return handler(state, stages, stage, reason)


def _deploy_target(
    state: str, stages: tuple[str, ...], stage: str | None
) -> tuple[str, str] | str:
    """(stage to deploy on, human-readable source) for deploy and release."""
    if state == SUBMITTED:
        natural = stages[0]
    elif state == DRAFT:
        return "the order is a draft; submit it first"
    else:
        current = parse_state(state, stages)
        if current is None:
            return f"the order is {state}"
        if current.phase is Phase.DEPLOYING:
            return f"the order is already deploying on {current.stage}"
        if current.phase is Phase.PASSED and stage == current.stage:
            natural = current.stage  # asked for by name: verify the stage again
        elif current.phase is Phase.PASSED:
            index = stages.index(current.stage)
            if index + 1 >= len(stages):
                return f"the order passed the last stage {current.stage}"
            natural = stages[index + 1]
        else:
            natural = current.stage
    if stage is not None and stage != natural:
        return f"the order is {state}; it can be deployed on {natural}, not on {stage}"
    return natural, state


def deployer_roles(target_stage: str, stages: tuple[str, ...]) -> tuple[str, ...]:
    """Who deploys on a stage: developers on the first, releasers on the later ones — and
    on the last, which is a release even when it is the only stage."""
    if target_stage == stages[0] and len(stages) > 1:
        return (Role.DEVELOPER.value,)
    return (Role.RELEASER.value,)


def _deploy(state: str, stages: tuple[str, ...], stage: str | None, _reason: str) -> Move:
    found = _deploy_target(state, stages, stage)
    if isinstance(found, str):
        return found
    target_stage = found[0]
    if target_stage == stages[-1] and len(stages) > 1:
        return f"{target_stage} is the last stage: use release, not deploy"
    return stage_state(target_stage, Phase.DEPLOYING), deployer_roles(target_stage, stages)


def _release(state: str, stages: tuple[str, ...], stage: str | None, _reason: str) -> Move:
    found = _deploy_target(state, stages, stage)
    if isinstance(found, str):
        return found
    target_stage = found[0]
    if target_stage != stages[-1]:
        return f"release deploys on the last stage {stages[-1]}; the order is {state}"
    return stage_state(target_stage, Phase.DEPLOYING), deployer_roles(target_stage, stages)


def _finish(phase_if_ok: bool) -> Handler:
    def handler(state: str, stages: tuple[str, ...], stage: str | None, _reason: str) -> Move:
        current = parse_state(state, stages)
        if current is None or current.phase is not Phase.DEPLOYING:
            return f"the order is {state}, not deploying"
        if not phase_if_ok:
            return stage_state(current.stage, Phase.FAILED), ()
        if current.stage == stages[-1]:
            return DONE, ()
        return stage_state(current.stage, Phase.DEPLOYED), ()

    return handler


def _tester_move(to_phase: Phase) -> Handler:
    def handler(state: str, stages: tuple[str, ...], stage: str | None, reason: str) -> Move:
        current = parse_state(state, stages)
        if current is None or current.phase is not Phase.DEPLOYED:
            return f"the order is {state}; only a deployed stage can be passed or rejected"
        if stage is not None and stage != current.stage:
            return f"the order is deployed on {current.stage}, not on {stage}"
        if to_phase is Phase.REJECTED and not reason.strip():
            return "a rejection needs a reason"
        return stage_state(current.stage, to_phase), (Role.TESTER.value,)

    return handler


def _submit(state: str, stages: tuple[str, ...], stage: str | None, _reason: str) -> Move:
    if state != DRAFT:
        return f"the order is {state}; only a draft can be submitted"
    return SUBMITTED, (Role.DEVELOPER.value,)


def _rollback(state: str, stages: tuple[str, ...], stage: str | None, _reason: str) -> Move:
    if state == DONE:
        current_stage = stages[-1]
    else:
        current = parse_state(state, stages)
        if current is None or current.phase not in ROLLBACKABLE:
            return f"the order is {state}; there is no deployment to roll back"
        current_stage = current.stage
    if stage is not None and stage != current_stage:
        return f"the order is {state}; it can be rolled back on {current_stage}, not on {stage}"
    return stage_state(current_stage, Phase.ROLLED_BACK), (Role.RELEASER.value,)


def _cancel(state: str, stages: tuple[str, ...], stage: str | None, _reason: str) -> Move:
    current = parse_state(state, stages)
    if current is not None and current.phase is Phase.DEPLOYING:
        return f"the order is deploying on {current.stage}; wait for it to end, then cancel"
    return CANCELLED, (Role.DEVELOPER.value, Role.RELEASER.value)


_HANDLERS: dict[Action, Handler] = {
    Action.SUBMIT: _submit,
    Action.DEPLOY: _deploy,
    Action.RELEASE: _release,
    Action.SUCCEED: _finish(True),
    Action.FAIL: _finish(False),
    Action.PASS: _tester_move(Phase.PASSED),
    Action.REJECT: _tester_move(Phase.REJECTED),
    Action.ROLLBACK: _rollback,
    Action.CANCEL: _cancel,
}
