"""The deploy plan as data: given heads and ledgers, expect these steps."""

from __future__ import annotations

import pytest

from golive.domain.plan import (
    LedgerEntry,
    ServiceInput,
    StatementInput,
    batches,
    make_plan,
)

S1 = StatementInput(0, "c1", "CREATE TABLE t (a INT)")
S2 = StatementInput(1, "c2", "INSERT INTO t VALUES (1)")


def svc(**overrides: object) -> ServiceInput:
    fields: dict[str, object] = {
        "service": "api", "mode": "artifact", "branch": "feature/x", "branch_head": "b2",
        "main_head": "m1", "ledger": None, "hosts": ("h1", "h2", "h3"), "batch": 0,
        "database": "db", "statements": (S1, S2), "sql_status": {},
    }
    fields.update(overrides)
    return ServiceInput(**fields)  # type: ignore[arg-type]


CASES = [
    # (name, service input, kind, expected action, expected statement actions)
    ("first deploy", svc(), "iterative", "deploy", ["run", "run"]),
    ("same heads → unchanged",
     svc(ledger=LedgerEntry("b2", "m1", "merge1"), sql_status={"c1": "success", "c2": "success"}),
     "iterative", "unchanged", ["skip", "skip"]),
    ("branch moved", svc(ledger=LedgerEntry("b1", "m1", "merge0")), "iterative", "deploy",
     ["run", "run"]),
    ("main moved (artifact)", svc(ledger=LedgerEntry("b2", "m0", "merge0")), "iterative",
     "deploy", ["run", "run"]),
    ("main moved (checkout ignores main)",
     svc(mode="checkout", main_head="", ledger=LedgerEntry("b2", "", "b2")), "iterative",
     "unchanged", ["run", "run"]),
    ("full redeploys unchanged heads",
     svc(ledger=LedgerEntry("b2", "m1", "merge1"), sql_status={"c1": "success"}), "full",
     "deploy", ["skip", "run"]),
    ("a failed statement runs again", svc(sql_status={"c1": "success", "c2": "failed"}),
     "iterative", "deploy", ["skip", "run"]),
    ("an unknown statement blocks", svc(sql_status={"c1": "unknown"}), "iterative", "deploy",
     ["blocked", "run"]),
    ("no database, no statements", svc(database="", statements=()), "iterative", "deploy", []),
]


@pytest.mark.parametrize(("name", "service", "kind", "action", "statements"), CASES,
                         ids=[c[0] for c in CASES])
def test_plan_cases(name: str, service: ServiceInput, kind: str, action: str,
                    statements: list[str]) -> None:
    plan = make_plan(7, "prod", kind, [service])
    (only,) = plan.services
    assert only.action == action
    assert [s.action for s in only.statements] == statements


def test_plan_is_plain_data_with_old_and_new_commits() -> None:
    plan = make_plan(7, "prod", "iterative",
                     [svc(ledger=LedgerEntry("b1", "m1", "merge0", "r0"), batch=2)])
    data = plan.to_dict()
    reviews = [st.pop("review") for st in data["services"][0]["statements"]]
    assert [[note["rule"] for note in review] for review in reviews] == [[], ["ddl-dml-mixed"]]
    assert data.pop("jobs") == []
    assert data == {
        "order_id": 7, "stage": "prod", "kind": "iterative", "lane": "", "resumes": 0,
        "finished_steps": [],
        "services": [{
            "service": "api", "mode": "artifact", "action": "deploy", "branch": "feature/x",
            "old_commit": "merge0", "branch_head": "b2", "main_head": "m1",
            "hosts": ["h1", "h2", "h3"], "batches": [["h1", "h2"], ["h3"]], "database": "db",
            "statements": [
                {"position": 0, "checksum": "c1", "text": S1.text, "action": "run", "status": ""},
                {"position": 1, "checksum": "c2", "text": S2.text, "action": "run", "status": ""},
            ],
        }],
    }


def test_blocked_statements_are_listed() -> None:
    plan = make_plan(1, "test", "iterative", [svc(sql_status={"c2": "running"})])
    assert [(svc.service, s.checksum, s.status) for svc, s in plan.blocked] == [
        ("api", "c2", "running")]


@pytest.mark.parametrize(
    ("hosts", "size", "expected"),
    [
        ((), 1, ()),
        (("a", "b", "c"), 0, (("a", "b", "c"),)),
        (("a", "b", "c"), 1, (("a",), ("b",), ("c",))),
        (("a", "b", "c"), 2, (("a", "b"), ("c",))),
        (("a", "b"), 5, (("a", "b"),)),
    ],
)
def test_batches(hosts: tuple[str, ...], size: int, expected: tuple[tuple[str, ...], ...]) -> None:
    assert batches(hosts, size) == expected


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown deploy kind"):
        make_plan(1, "test", "sideways", [svc()])


@pytest.mark.parametrize(
    ("count", "batch", "expected"),
    [(20, "25%", 5), (20, "10%", 2), (3, "50%", 2), (3, "1%", 1), (4, "100%", 4), (4, 0, 4),
     (4, "0", 4), (4, "3", 3), (0, "50%", 1)],
)
def test_batch_size(count: int, batch: int | str, expected: int) -> None:
    from golive.domain.plan import batch_size

    assert batch_size(batch, count) == expected


def test_review_refuses_unapproved_risky_statements_that_will_run() -> None:
    risky = StatementInput(2, "c3", "DELETE FROM orders")
    plan = make_plan(1, "prod", "iterative", [svc(statements=(S1, S2, risky))])
    assert [(name, s.position, n.rule) for name, s, n in plan.refused] == [
        ("api", 2, "delete-without-where")]
    assert "orders" in plan.refused[0][2].message_en
    assert plan.refused[0][2].message_zh
    approved = make_plan(1, "prod", "iterative",
                         [svc(statements=(S1, S2, risky), approved=frozenset({"c3"}))])
    assert approved.refused == []
    assert approved.services[0].statements[2].review[0].approved
    done = make_plan(1, "prod", "iterative",
                     [svc(statements=(S1, S2, risky), sql_status={"c3": "success"})])
    assert done.refused == []  # already ran: nothing to review


def test_review_warns_on_ddl_and_dml_mixed() -> None:
    plan = make_plan(1, "prod", "iterative", [svc()])
    notes = [n for s in plan.services[0].statements for n in s.review]
    assert [(n.rule, n.severity) for n in notes] == [("ddl-dml-mixed", "warn")]
    assert plan.refused == []
