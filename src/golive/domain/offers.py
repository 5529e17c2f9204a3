"""What a person may do with an order now, and whether the order waits for them.

The order page shows one button per ``Offer`` and the dashboard lists the orders whose
duties (``waiting``) name one of the viewer's roles. Both are built on the rules the
services enforce — ``workflow.decide`` for moves, ``permissions.check`` for the rest —
so a page never offers what the server would refuse. What the store knows beyond the
order's state (SQL awaiting approval, statements left unknown, a paused deployment)
comes in as ``Facts``, gathered by ``services/duties.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from golive.domain.permissions import Permission, check
from golive.domain.roles import Role
from golive.domain.workflow import Action, Actor, Phase, decide, deployer_roles, parse_state

REDEPLOYABLE = frozenset({Phase.DEPLOYED, Phase.FAILED, Phase.REJECTED, Phase.ROLLED_BACK})
EDITABLE_STATES = frozenset({"draft", "submitted"})
"""An order is edited as a whole (title, services, branches) only before its first deploy."""

SQL_APPROVAL = "sql_approval"
"""A deploy blocked until an owner or releaser approves SQL the review rules refuse."""
SQL_UNKNOWN = "sql_unknown"
"""A deploy blocked until a statement left ``unknown`` is resolved."""


@dataclass(frozen=True)
class Facts:
    """What the store says of an order besides its state."""

    filed_by_me: bool = False
    sql_awaiting_approval: bool = False
    """Statements the review rules refuse and nobody approved yet (on any stage to come)."""
    blocked: str = ""
    """Why a deploy on the order's next stage would be refused: SQL_APPROVAL, SQL_UNKNOWN."""
    unknown_statements: tuple[str, ...] = ()
    """``SERVICE:N`` of each statement a dead run left unknown."""
    paused_stage: str = ""
    """The stage of the order's deployment paused between batches ("" when none)."""


@dataclass(frozen=True)
class Offer:
    """One action the viewer may take: the operation it calls and what it is about."""

    operation: str
    """``order.pass``, ``order.deploy``, ``sql.resolve``, ..."""
    stage: str = ""
    kind: str = ""
    """``iterative`` or ``full`` for a deploy or release; "" otherwise."""
    redeploy: bool = False
    """A deploy on the stage the order is on (after a fix), not onto the next one."""
    statement: str = ""
    """The ``SERVICE:N`` a ``sql.resolve`` settles."""
    blocked: str = ""
    """Set when the server would refuse the deploy now: shown as a note, not a button."""


def offers(state: str, actor: Actor, stages: tuple[str, ...], facts: Facts) -> list[Offer]:
    """Every action ``actor`` may take on an order in ``state``, in the order a page
    shows them (the pipeline's next step first, cancel last)."""
    found = [*_deploys(state, actor, stages, facts)]
    if state in EDITABLE_STATES and check(Permission.EDIT_ORDER, actor, "edit").allowed:
        found.append(Offer("order.update"))
    for action, operation in ((Action.SUBMIT, "order.submit"), (Action.PASS, "order.pass"),
                              (Action.REJECT, "order.reject"),
                              (Action.ROLLBACK, "order.rollback")):
        # a rejection needs a reason: ask the machine with one, the form asks the person
        decision = decide(state, action, actor, stages, reason="?")
        if decision.allowed:
            found.append(Offer(operation, stage=_stage_of(decision.target, stages)))
    found.extend(_ledger_offers(actor, stages, facts))
    if decide(state, Action.CANCEL, actor, stages).allowed:
        found.append(Offer("order.cancel"))
    return found


def _deploys(state: str, actor: Actor, stages: tuple[str, ...], facts: Facts
             ) -> list[Offer]:
    for action, operation in ((Action.DEPLOY, "order.deploy"),
                              (Action.RELEASE, "order.release")):
        decision = decide(state, action, actor, stages)
        if not decision.allowed:
            continue
        target = _stage_of(decision.target, stages)
        current = parse_state(state, stages)
        redeploy = current is not None and current.stage == target and \
            current.phase in REDEPLOYABLE
        kinds = ("iterative", "full") if redeploy else ("iterative",)
        return [Offer(operation, stage=target, kind=kind, redeploy=redeploy,
                      blocked=facts.blocked) for kind in kinds]
    return []


def _ledger_offers(actor: Actor, stages: tuple[str, ...], facts: Facts) -> list[Offer]:
    found = []
    if facts.paused_stage and check(Permission.RESUME_BATCHES, actor, "resume",
                                    deployer_roles(facts.paused_stage, stages)).allowed:
        found.append(Offer("order.resume", stage=facts.paused_stage))
    if facts.sql_awaiting_approval and check(Permission.APPROVE_SQL, actor, "approve").allowed:
        found.append(Offer("order.approve_sql"))
    if check(Permission.RESOLVE_SQL, actor, "resolve").allowed:
        found.extend(Offer("sql.resolve", statement=ref) for ref in facts.unknown_statements)
    return found


def _stage_of(target: str, stages: tuple[str, ...]) -> str:
    if target == "done":
        return stages[-1]
    return target.partition(":")[0] if ":" in target else ""


# -- waiting for me ------------------------------------------------------------------------

DUTIES = {"order.submit": "submit", "order.pass": "test", "order.deploy": "deploy",
          "order.release": "release", "order.approve_sql": "approve_sql",
          "sql.resolve": "resolve_sql", "order.resume": "resume"}
"""The offers that are someone's next step, by the duty they stand for."""


def waiting(state: str, actor: Actor, stages: tuple[str, ...], facts: Facts) -> list[str]:
    """The duties the order waits for ``actor`` to do, by their project roles (a site
    admin's powers do not make every order wait for them): ``test`` (pass or reject),
    ``deploy``, ``release``, ``approve_sql``, ``resolve_sql``, ``resume``, and for the
    developer who filed it ``submit`` and ``fix`` (a failed or rejected stage)."""
    member = replace(actor, is_admin=False)
    duties: list[str] = []
    current = parse_state(state, stages)
    mine = facts.filed_by_me and bool(member.roles & {Role.DEVELOPER.value, Role.OWNER.value})
    for offer in offers(state, member, stages, facts):
        duty = DUTIES.get(offer.operation, "")
        if not duty or duty in duties or offer.blocked:
            continue
        if duty in ("submit", "deploy", "release") and not _my_step(offer, member, mine):
            continue
        if offer.redeploy:
            continue  # a redeploy is the fix below, or nobody's duty
        duties.append(duty)
    if mine and current is not None and current.phase in (Phase.FAILED, Phase.REJECTED):
        duties.append("fix")
    return duties


def _my_step(offer: Offer, actor: Actor, mine: bool) -> bool:
    """Submitting and deploying onto the first stage are the filing developer's steps;
    deploying onto later stages and releasing are every releaser's."""
    if offer.operation == "order.submit":
        return mine
    if offer.operation == "order.deploy" and Role.RELEASER.value not in actor.roles and \
            Role.OWNER.value not in actor.roles:
        return mine
    return True
