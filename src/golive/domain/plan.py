"""The deploy plan: what a deployment of an order on a stage would do, as data.

Given the branch heads, the commit ledger and the SQL ledger, ``make_plan`` says
for each service whether it deploys (and from which commit to which), which of its
statements run or are skipped, and the hosts in their batches. It touches
nothing; the engine carries a plan out and tests compare plans as data.

When asked (``services.deploy.build_plan(..., estimate_transfer=True)``), each artifact
service that deploys also carries a ``TransferPlan``: the bytes phase one would send,
by delta from the release the stage serves now or as the whole archive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from golive.domain.jobs import JobPlan
from golive.domain.sql import GENERIC
from golive.domain.sql_review import REFUSE, review_item

DEPLOY, UNCHANGED = "deploy", "unchanged"
RUN, SKIP, BLOCKED = "run", "skip", "blocked"


@dataclass(frozen=True)
class LedgerEntry:
    """What the commit ledger says was deployed for (order, service, stage)."""

    branch_commit: str
    main_commit: str
    deployed_commit: str
    release_id: str = ""


@dataclass(frozen=True)
class StatementInput:
    position: int
    checksum: str
    text: str


@dataclass(frozen=True)
class ServiceInput:
    service: str
    mode: str  # artifact | checkout
    branch: str
    branch_head: str
    main_head: str = ""
    ledger: LedgerEntry | None = None
    hosts: tuple[str, ...] = ()
    batch: int | str = 0
    database: str = ""
    statements: tuple[StatementInput, ...] = ()
    sql_status: dict[str, str] = field(default_factory=dict)
    """checksum → status in the SQL ledger of this order on the stage's database."""
    dialect: str = GENERIC
    approved: frozenset[str] = frozenset()
    """Checksums of statements an owner or releaser approved past the review rules."""


@dataclass(frozen=True)
class ReviewNote:
    rule: str
    severity: str  # refuse | warn
    message_en: str
    message_zh: str
    approved: bool = False


@dataclass(frozen=True)
class StatementPlan:
    position: int
    checksum: str
    text: str
    action: str  # run | skip | blocked
    status: str = ""
    review: tuple[ReviewNote, ...] = ()
    """Review findings of a statement that will run (none for skipped ones)."""

    @property
    def refused(self) -> list[ReviewNote]:
        return [n for n in self.review if n.severity == REFUSE and not n.approved]


@dataclass(frozen=True)
class TransferPlan:
    """What phase one would send the hosts of an artifact service — an estimate: hosts are
    not asked, so it assumes each serves the release the stage's board shows; on the day,
    each host's own current release decides (and the log says so per host)."""

    method: str
    """``delta`` or ``full``."""
    reason: str = ""
    """Why the whole archive, or why some sizes are not known yet."""
    previous_release: str = ""
    """The release the stage serves now: the base of the delta."""
    hosts: int = 0
    full_bytes: int | None = None
    """The archive (.tar.zst) and its manifest, per host; None until the artifact is built."""
    delta_bytes: int | None = None
    """The delta stream, per host."""
    bytes_total: int | None = None
    """What this deploy sends all hosts (by the method above)."""
    full_bytes_total: int | None = None
    """What sending every host the archive would cost."""
    files_sent: int | None = None
    files_linked: int | None = None
    files_copied: int | None = None
    files_removed: int | None = None


def transfer_plan(method: str, hosts: int, *, reason: str = "", previous_release: str = "",
                  full_bytes: int | None = None, delta_bytes: int | None = None,
                  counts: tuple[int, int, int, int] | None = None) -> TransferPlan:
    """A ``TransferPlan`` with its totals; ``counts`` = files sent, linked, copied, removed."""
    per_host = delta_bytes if method == "delta" else full_bytes
    sent, linked, copied, removed = counts if counts is not None else (None, None, None, None)
    return TransferPlan(
        method, reason, previous_release, hosts, full_bytes, delta_bytes,
        None if per_host is None else per_host * hosts,
        None if full_bytes is None else full_bytes * hosts, sent, linked, copied, removed)


def human_bytes(count: int) -> str:
    """Bytes for people: 812 B, 14.2 KB, 52.3 MB (powers of 1000, like the bench)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


@dataclass(frozen=True)
class ServicePlan:
    service: str
    mode: str
    action: str  # deploy | unchanged
    branch: str
    old_commit: str
    branch_head: str
    main_head: str
    hosts: tuple[str, ...]
    batches: tuple[tuple[str, ...], ...]
    database: str
    statements: tuple[StatementPlan, ...]
    transfer: TransferPlan | None = None
    """Artifact services that deploy, in a plan made with transfer estimates: the bytes
    phase one would send (absent from ``to_dict`` otherwise)."""


@dataclass(frozen=True)
class Plan:
    order_id: int
    stage: str
    kind: str  # iterative | full
    services: tuple[ServicePlan, ...]
    jobs: tuple[JobPlan, ...] = ()
    """Per job host and job: create, reload, or reported as not in this order."""
    lane: str = ""
    resumes: int = 0
    """The interrupted deployment this deploy resumes (0: a new one)."""
    finished_steps: tuple[str, ...] = ()
    """Steps the interrupted run finished ("receive api@web-1"): checked, not redone."""

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-shaped data (lists, not tuples): the `plan --json` contract.
        A service's ``transfer`` is there only when the plan estimated it."""
        data: dict[str, Any] = _listify(asdict(self))
        for service in data["services"]:
            if service["transfer"] is None:
                del service["transfer"]
        return data

    @property
    def refused(self) -> list[tuple[str, StatementPlan, ReviewNote]]:
        """(service, statement, finding) that the review refuses and nobody approved."""
        return [(svc.service, stmt, note) for svc in self.services
                for stmt in svc.statements for note in stmt.refused]

    @property
    def blocked(self) -> list[tuple[ServicePlan, StatementPlan]]:
        """(service, statement) left unknown or running: no deploy may go on past them."""
        return [(svc, s) for svc in self.services for s in svc.statements
                if s.action == BLOCKED]


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_listify(v) for v in value]
    return value


def batch_size(batch: int | str, hosts: int) -> int:
    """How many of ``hosts`` switch at a time: ``batch`` hosts, or a percentage, at least 1."""
    text = str(batch).strip()
    if text.endswith("%"):
        return max(1, -(-hosts * int(text[:-1]) // 100))
    size = int(text or 0)
    return size if size > 0 else max(hosts, 1)


def batches(hosts: tuple[str, ...], batch: int | str) -> tuple[tuple[str, ...], ...]:
    """Hosts in switch batches (``batch``: a number, 0 for all at once, or "N%")."""
    if not hosts:
        return ()
    step = batch_size(batch, len(hosts))
    return tuple(hosts[i:i + step] for i in range(0, len(hosts), step))


def _changed(svc: ServiceInput) -> bool:
    if svc.ledger is None:
        return True
    if svc.mode == "artifact":
        return (svc.branch_head, svc.main_head) != (svc.ledger.branch_commit,
                                                    svc.ledger.main_commit)
    return svc.branch_head != svc.ledger.branch_commit


def _statement(stmt: StatementInput, status: str, notes: tuple[ReviewNote, ...]
               ) -> StatementPlan:
    if status == "success":
        action = SKIP
    elif status in ("unknown", "running"):
        action = BLOCKED
    else:
        action = RUN
    return StatementPlan(stmt.position, stmt.checksum, stmt.text, action, status,
                         notes if action == RUN else ())


def _review(svc: ServiceInput) -> dict[int, tuple[ReviewNote, ...]]:
    """Index in the item → the review's findings, each marked approved or not."""
    notes: dict[int, list[ReviewNote]] = {}
    findings = review_item([s.text for s in svc.statements], svc.dialect)
    for finding in findings:
        checksum = svc.statements[finding.statement].checksum
        notes.setdefault(finding.statement, []).append(ReviewNote(
            finding.rule, finding.severity, finding.message_en, finding.message_zh,
            checksum in svc.approved))
    return {index: tuple(found) for index, found in notes.items()}


def plan_service(svc: ServiceInput, kind: str) -> ServicePlan:
    action = DEPLOY if kind == "full" or _changed(svc) else UNCHANGED
    review = _review(svc) if svc.database else {}
    statements = tuple(_statement(s, svc.sql_status.get(s.checksum, ""), review.get(i, ()))
                       for i, s in enumerate(svc.statements)) if svc.database else ()
    return ServicePlan(
        service=svc.service, mode=svc.mode, action=action, branch=svc.branch,
        old_commit=svc.ledger.deployed_commit if svc.ledger else "",
        branch_head=svc.branch_head, main_head=svc.main_head, hosts=svc.hosts,
        batches=batches(svc.hosts, svc.batch), database=svc.database, statements=statements,
    )


def make_plan(order_id: int, stage: str, kind: str, services: list[ServiceInput],
              jobs: list[JobPlan] | None = None, *, lane: str = "", resumes: int = 0,
              finished_steps: tuple[str, ...] = ()) -> Plan:
    if kind not in ("iterative", "full"):
        raise ValueError(f"unknown deploy kind {kind!r}")
    return Plan(order_id, stage, kind, tuple(plan_service(s, kind) for s in services),
                tuple(jobs or ()), lane, resumes, finished_steps)
