"""Names golive accepts, and SQL statement splitting and identity."""

from __future__ import annotations

import pytest

from golive.domain.names import branch_problem, name_problem
from golive.domain.sql import checksum, split_statements


@pytest.mark.parametrize("branch", ["main", "feature/coupons", "fix-1.2", "release/2026.11",
                                    "优惠券"])
def test_good_branches(branch: str) -> None:
    assert branch_problem(branch) is None


@pytest.mark.parametrize(
    ("branch", "why"),
    [
        ("", "empty"), ("-rf", "starts with '-'"), ("a..b", "'..'"), ("a b", "space"),
        ("a~1", "~"), ("a:b", ":"), ("x@{1}", "@{"), ("@", "'@'"), ("a/", "empty part"),
        ("a//b", "empty part"), ("a.", "ends with '.'"), ("x/.hidden", "starting with '.'"),
        ("x.lock", ".lock"), ("a;rm -rf /", "space"), ("$(id)", None),
    ],
)
def test_bad_branches(branch: str, why: str | None) -> None:
    problem = branch_problem(branch)
    if why is None:
        # `$(id)` is a valid git ref name; it must only ever reach a shell quoted.
        assert problem is None
    else:
        assert problem is not None and why in problem


@pytest.mark.parametrize("name", ["shop", "api-v2", "web_1", "a.b"])
def test_good_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "x" * 64, "../etc", "名字"])
def test_bad_names(name: str) -> None:
    assert name_problem(name) is not None


def test_split_keeps_semicolons_inside_literals_and_takes_a_trailing_statement() -> None:
    script = """
    -- make the table
    CREATE TABLE t (a VARCHAR(10));
    INSERT INTO t VALUES ('x; y');  /* done */
    UPDATE t SET a = 'z' WHERE a = 'x; y'
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].endswith("INSERT INTO t VALUES ('x; y')")
    assert statements[2].endswith("UPDATE t SET a = 'z' WHERE a = 'x; y'")


def test_checksum_ignores_comments_and_spacing_but_not_literals() -> None:
    base = checksum("INSERT INTO t VALUES ('a  b')")
    assert checksum("-- note\nINSERT   INTO t\n VALUES ('a  b');") == base
    assert checksum("INSERT INTO t VALUES ('a b')") != base
    assert len(base) == 64
