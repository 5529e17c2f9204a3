"""The SQL splitter and statement identity: tables per dialect, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golive.domain.sql import (
    GENERIC,
    MYSQL,
    POSTGRESQL,
    SQLITE,
    checksum,
    dialect_of,
    normalize,
    split_statements,
)

CASES = [
    ("semicolon in strings", GENERIC, "INSERT INTO t VALUES ('a;b'); SELECT 'it''s;'",
     ["INSERT INTO t VALUES ('a;b')", "SELECT 'it''s;'"]),
    ("trailing statement without terminator", SQLITE, "SELECT 1; SELECT 2",
     ["SELECT 1", "SELECT 2"]),
    ("comments hold semicolons", GENERIC, "SELECT 1 /* a; b */; -- c; d\nSELECT 2;",
     ["SELECT 1 /* a; b */", "-- c; d\nSELECT 2"]),
    ("only comments is no statement", GENERIC, "-- nothing;\n/* here; */\n", []),
    ("mysql hash comment", MYSQL, "# note; here\nSELECT 1;", ["# note; here\nSELECT 1"]),
    ("hash is not a comment in postgres", POSTGRESQL, "SELECT 1 # 2; SELECT 3",
     ["SELECT 1 # 2", "SELECT 3"]),
    ("mysql double dash needs a space", MYSQL, "SELECT 1--1; SELECT 2",
     ["SELECT 1--1", "SELECT 2"]),
    ("mysql executable comment is code", MYSQL, "/*!40101 SET NAMES utf8mb4 */;",
     ["/*!40101 SET NAMES utf8mb4 */"]),
    ("mysql backslash escapes", MYSQL, r"INSERT INTO t VALUES ('a\';b'); SELECT 2",
     [r"INSERT INTO t VALUES ('a\';b')", "SELECT 2"]),
    ("mysql backticks and double quotes", MYSQL, 'SELECT `a;b`, "c;d"; SELECT 2',
     ['SELECT `a;b`, "c;d"', "SELECT 2"]),
    ("postgres quoted identifier", POSTGRESQL, 'SELECT "a;""b"; SELECT 2',
     ['SELECT "a;""b"', "SELECT 2"]),
    ("postgres backslash is plain in standard strings", POSTGRESQL, r"SELECT 'a\'; SELECT 2",
     [r"SELECT 'a\'", "SELECT 2"]),
    ("postgres E strings take backslashes", POSTGRESQL, r"SELECT E'a\';b'; SELECT 2",
     [r"SELECT E'a\';b'", "SELECT 2"]),
    ("postgres dollar bodies", POSTGRESQL,
     "CREATE FUNCTION f() RETURNS int AS $fn$ BEGIN RETURN 1; END; $fn$ LANGUAGE plpgsql;"
     " DO $$ BEGIN PERFORM 1; END $$;",
     ["CREATE FUNCTION f() RETURNS int AS $fn$ BEGIN RETURN 1; END; $fn$ LANGUAGE plpgsql",
      "DO $$ BEGIN PERFORM 1; END $$"]),
    ("postgres positional parameters are not dollar quotes", POSTGRESQL,
     "SELECT $1; SELECT $2", ["SELECT $1", "SELECT $2"]),
    ("mysql delimiter blocks", MYSQL,
     "DELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END$$\n"
     "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END$$\n"
     "DELIMITER ;\nSELECT 3;",
     ["CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
      "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END",
      "SELECT 3"]),
    ("delimiter is case-insensitive, two-char", MYSQL,
     "delimiter //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //\ndelimiter ;\n",
     ["CREATE PROCEDURE p() BEGIN SELECT 1; END"]),
]


@pytest.mark.parametrize(("name", "dialect", "script", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_split(name: str, dialect: str, script: str, expected: list[str]) -> None:
    assert split_statements(script, dialect) == expected


@pytest.mark.parametrize(
    ("url", "dialect"),
    [("mysql+pymysql://u@h/d", MYSQL), ("mariadb://u@h/d", MYSQL),
     ("postgresql+psycopg://u@h/d", POSTGRESQL), ("sqlite:///x.db", SQLITE),
     ("oracle://x", GENERIC)],
)
def test_dialect_of(url: str, dialect: str) -> None:
    assert dialect_of(url) == dialect


def test_identity_ignores_comments_and_spacing_but_not_literals() -> None:
    base = checksum("UPDATE t SET a = 'x  y' WHERE id = 1")
    assert checksum("UPDATE t\n  SET a = 'x  y' -- why\n WHERE id = 1;") == base
    assert checksum("/* lead */ UPDATE t SET a = 'x  y' WHERE id = 1") == base
    assert checksum("UPDATE t SET a = 'x y' WHERE id = 1") != base
    assert checksum("UPDATE t SET a = 'x  y' WHERE id = 2") != base
    assert checksum("SELECT $$a  b$$", POSTGRESQL) != checksum("SELECT $$a b$$", POSTGRESQL)


# --- properties ---------------------------------------------------------------------------

WORD = st.sampled_from(["SELECT", "INSERT", "INTO", "t", "VALUES", "a", "b", "1", "=", "(",
                        ")", ",", "*", "WHERE", "id", "-", "+"])
TEXT = st.text(alphabet=st.sampled_from(list("ab ;'\"`$-/*#\\\n")), max_size=12)


def _single_quoted(text: str, dialect: str) -> str:
    if dialect == MYSQL:
        text = text.replace("\\", "\\\\")
    return "'" + text.replace("'", "''") + "'"


def _fragment(dialect: str) -> st.SearchStrategy[str]:
    options = [
        WORD,
        TEXT.map(lambda t: _single_quoted(t, dialect)),
        TEXT.filter(lambda t: "*/" not in t and not t.startswith("!")).map(
            lambda t: f"/*{t}*/"),
        TEXT.filter(lambda t: "\n" not in t).map(lambda t: f"-- {t}\n"),
    ]
    if dialect == MYSQL:
        options.append(TEXT.map(lambda t: "`" + t.replace("`", "``") + "`"))
        options.append(TEXT.filter(lambda t: "\n" not in t).map(lambda t: f"# {t}\n"))
    if dialect == POSTGRESQL:
        options.append(TEXT.filter(lambda t: "$body$" not in t and not t.endswith("$body"))
                       .map(lambda t: f"$body${t}$body$"))
        options.append(TEXT.map(lambda t: '"' + t.replace('"', '""') + '"'))
    return st.one_of(*options)


def _statement(dialect: str) -> st.SearchStrategy[str]:
    return st.tuples(WORD, st.lists(_fragment(dialect), max_size=6)).map(
        lambda parts: " ".join([parts[0], *parts[1]]))


@pytest.mark.parametrize("dialect", [GENERIC, MYSQL, POSTGRESQL, SQLITE])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_joining_statements_and_splitting_gives_them_back(dialect: str, data: st.DataObject
                                                           ) -> None:
    statements = data.draw(st.lists(_statement(dialect), min_size=1, max_size=5))
    trailing = data.draw(st.booleans())
    script = ";\n".join(statements) + (";" if trailing else "")
    got = split_statements(script, dialect)
    assert [normalize(s, dialect) for s in got] == [normalize(s, dialect) for s in statements]


@settings(max_examples=150, deadline=None)
@given(words=st.lists(WORD, min_size=1, max_size=8), literal=TEXT,
       comment=TEXT.filter(lambda t: "*/" not in t and not t.startswith("!")))
def test_identity_is_stable_under_comments_and_whitespace(
    words: list[str], literal: str, comment: str
) -> None:
    plain = " ".join(["SELECT", *words, _single_quoted(literal, GENERIC)])
    noisy = "  /*" + comment + "*/\n " + plain.replace(" ", " \n\t ", 1) + " ;"
    assert checksum(noisy) == checksum(plain)
    changed = " ".join(["SELECT", *words, _single_quoted(literal + "x", GENERIC)])
    assert checksum(changed) != checksum(plain)
