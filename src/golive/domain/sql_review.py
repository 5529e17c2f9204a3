"""Review rules for an order's SQL: what is refused without approval, what is warned about.

Each statement is read as the database reads it (``sql.code_tokens``): a keyword
inside a string, a quoted identifier or a comment never counts, and neither does
one inside parentheses where the rule is about the statement itself (the ``WHERE``
of a subquery is not the ``WHERE`` of the ``UPDATE`` around it).

Rules with severity ``refuse`` stop a run unless an owner or releaser has
approved the order's SQL; ``warn`` rules are shown and do not stop anything. The
body of a routine (a MySQL procedure, function, trigger or event written between
``DELIMITER`` lines, a PostgreSQL ``DO`` block or ``$$``-quoted function body) is
reviewed statement by statement, since those statements run as written whenever
the routine does.

Messages come in English and Simplified Chinese and name the table (or column,
database, account) when the statement says which.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from golive.domain.sql import GENERIC, code_tokens

REFUSE, WARN = "refuse", "warn"
LANGUAGES = ("en", "zh_CN")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # refuse | warn
    message_en: str  # templates: {table}, {column}, {name}, {kind}, {grantee}, {ddl}, {dml}
    message_zh: str


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    statement: int  # 0-based position of the statement in the item's list
    message_en: str
    message_zh: str


_APPROVE_EN = "have an owner or releaser approve the order's SQL"
_APPROVE_ZH = "请项目负责人/发布人审批本单的 SQL"

RULES: tuple[Rule, ...] = (
    Rule("update-without-where", REFUSE,
         "UPDATE without WHERE changes every row of {table}; add a WHERE, or " + _APPROVE_EN,
         "不带 WHERE 的 UPDATE 会修改 {table} 的所有行；请加上 WHERE，或" + _APPROVE_ZH),
    Rule("delete-without-where", REFUSE,
         "DELETE without WHERE removes every row of {table}; add a WHERE, or " + _APPROVE_EN,
         "不带 WHERE 的 DELETE 会删除 {table} 的所有行；请加上 WHERE，或" + _APPROVE_ZH),
    Rule("drop-table", REFUSE,
         "DROP TABLE deletes {table}, data and all; " + _APPROVE_EN,
         "DROP TABLE 会删除表 {table} 及其全部数据；" + _APPROVE_ZH),
    Rule("drop-database", REFUSE,
         "DROP {kind} deletes {name} and every table in it; " + _APPROVE_EN,
         "DROP {kind} 会删除 {name} 及其中的所有表；" + _APPROVE_ZH),
    Rule("truncate", REFUSE,
         "TRUNCATE removes every row of {table}; " + _APPROVE_EN,
         "TRUNCATE 会删除 {table} 的所有行；" + _APPROVE_ZH),
    Rule("alter-drop-column", REFUSE,
         "ALTER TABLE ... DROP COLUMN deletes column {column} of {table} and its data; "
         + _APPROVE_EN,
         "ALTER TABLE ... DROP COLUMN 会删除 {table} 的列 {column} 及其数据；" + _APPROVE_ZH),
    Rule("rename", REFUSE,
         "RENAME {name}: queries and running releases that use the old name fail; "
         + _APPROVE_EN,
         "重命名 {name}：仍使用旧名称的查询和正在运行的版本会出错；" + _APPROVE_ZH),
    Rule("grant", REFUSE,
         "GRANT gives privileges to {grantee}; " + _APPROVE_EN,
         "GRANT 会向 {grantee} 授予权限；" + _APPROVE_ZH),
    Rule("ddl-dml-mixed", WARN,
         "This item mixes DDL (statement {ddl}) and DML (statement {dml}); MySQL-family "
         "databases commit DDL at once, so a failure can leave the item half applied; "
         "put schema changes and data changes in separate items",
         "本项混合了 DDL（第 {ddl} 条语句）和 DML（第 {dml} 条语句）；MySQL 系数据库执行 DDL "
         "时会立即提交，失败时本项可能只执行了一部分；请把结构变更和数据变更放在不同的项中"),
)
_BY_ID = {rule.id: rule for rule in RULES}

# What a placeholder says when the statement does not name it: (en, zh).
_UNKNOWN = {"table": ("the table", "该表"), "grantee": ("an account", "某个账号")}

_DDL = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})
_DML = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE"})
_MAIN_AFTER_WITH = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE",
                              "TABLE", "VALUES"})
# Words that begin a routine body of one statement (after a parameter list or handler).
_BODY_START = frozenset({"BEGIN", "IF", "CASE", "WHILE", "LOOP", "REPEAT", "RETURN", "SELECT",
                         "CALL", "WITH", "GRANT", "REVOKE"}) | _DDL | _DML
_NOT_ROUTINE = frozenset({"TABLE", "VIEW", "INDEX", "DATABASE", "SCHEMA", "AS", "ON", "SELECT",
                          "SEQUENCE", "USER", "ROLE", "TYPE", "DOMAIN", "EXTENSION", "RULE",
                          "POLICY", "CAST", "SERVER", "TABLESPACE"})
# What ALTER TABLE ... DROP may name besides a column.
_NOT_COLUMN = frozenset({"INDEX", "KEY", "PRIMARY", "FOREIGN", "CONSTRAINT", "CHECK",
                         "PARTITION", "SYSTEM", "PERIOD", "UNIQUE"})
_DOLLAR_TAG = re.compile(r"\$[A-Za-z0-9_]*\$")


@dataclass(frozen=True)
class _T:
    kind: str  # word | mark | literal | end
    text: str
    depth: int  # parentheses open around the token (a "(" or ")" has the depth outside it)


_Hit = tuple[str, dict[str, str | None]]


def _tokens(text: str, dialect: str) -> list[_T]:
    out: list[_T] = []
    depth = 0
    for token in code_tokens(text, dialect):
        kind = token.kind
        if kind == "code":
            kind = "word" if token.text[0].isalnum() or token.text[0] == "_" else "mark"
        if kind == "mark" and token.text == ")":
            depth = max(depth - 1, 0)
        out.append(_T(kind, token.text, depth))
        if kind == "mark" and token.text == "(":
            depth += 1
        elif kind == "end":
            depth = 0
    return out


def _pieces(ts: list[_T]) -> list[list[_T]]:
    """``ts`` cut at terminators outside parentheses (a routine body's ``;``)."""
    pieces: list[list[_T]] = []
    current: list[_T] = []
    for t in ts:
        if t.kind == "end" or (t.kind == "mark" and t.text == ";" and t.depth == 0):
            if current:
                pieces.append(current)
            current = []
        else:
            current.append(t)
    if current:
        pieces.append(current)
    return pieces


def _is(ts: list[_T], i: int, *words: str) -> bool:
    """Whether token ``i`` is one of the keywords ``words`` (not a name after a dot)."""
    return (0 <= i < len(ts) and ts[i].kind == "word" and ts[i].text.upper() in words
            and not (i > 0 and ts[i - 1].kind == "mark" and ts[i - 1].text == "."))


def _mark(ts: list[_T], i: int, text: str) -> bool:
    return 0 <= i < len(ts) and ts[i].kind == "mark" and ts[i].text == text


def _find(ts: list[_T], start: int, *words: str) -> int | None:
    """The first of ``words`` at ``start`` or after, outside parentheses."""
    for j in range(max(start, 0), len(ts)):
        if ts[j].depth == 0 and _is(ts, j, *words):
            return j
    return None


def _close(ts: list[_T], j: int) -> int:
    """The ``)`` matching the ``(`` at ``j`` (or the end)."""
    for k in range(j + 1, len(ts)):
        if _mark(ts, k, ")") and ts[k].depth == ts[j].depth:
            return k
    return len(ts)


def _inside(ts: list[_T], j: int) -> list[_T]:
    """The tokens between the ``(`` at ``j`` and its ``)``, at depth 0."""
    base = ts[j].depth + 1
    return [replace(t, depth=t.depth - base) for t in ts[j + 1:_close(ts, j)]]


def _skip(ts: list[_T], i: int, *words: str) -> int:
    while _is(ts, i, *words):
        i += 1
    return i


def _skip_if_exists(ts: list[_T], i: int) -> int:
    return i + 2 if _is(ts, i, "IF") and _is(ts, i + 1, "EXISTS") else i


def _skip_only(ts: list[_T], i: int) -> int:
    """PostgreSQL's ``ONLY t`` (``ONLY`` followed by a name)."""
    return i + 1 if _is(ts, i, "ONLY") and _identifier(ts, i + 1) else i


def _identifier(ts: list[_T], i: int) -> bool:
    return 0 <= i < len(ts) and (ts[i].kind == "word" or (
        ts[i].kind == "literal" and ts[i].text[:1] in ('"', "`")))


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in ('"', "`") and text[-1] == text[0]:
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def _render(ts: list[_T]) -> str | None:
    """Tokens as text: no space around punctuation, identifiers unquoted."""
    out = ""
    for k, t in enumerate(ts):
        if k and t.kind != "mark" and ts[k - 1].kind != "mark":
            out += " "
        out += _unquote(t.text) + (" " if t.text == "," else "")
    return out.strip() or None


def _name(ts: list[_T], i: int) -> tuple[str | None, int]:
    """A possibly qualified name at ``i`` (``db.t``, ```t```) and the index after it."""
    if not _identifier(ts, i):
        return None, i
    parts = [_unquote(ts[i].text)]
    i += 1
    while _mark(ts, i, ".") and _identifier(ts, i + 1):
        parts.append(_unquote(ts[i + 1].text))
        i += 2
    return ".".join(parts), i


def _names(ts: list[_T], i: int) -> str | None:
    """A comma-separated list of names at ``i`` (PostgreSQL's ``t *`` allowed)."""
    names: list[str] = []
    while True:
        name, i = _name(ts, i)
        if name is None:
            break
        names.append(name)
        if _mark(ts, i, "*"):
            i += 1
        if not _mark(ts, i, ","):
            break
        i += 1
    return ", ".join(names) or None


def _arrow(old: str | None, new: str | None) -> str:
    return f"{old or '?'} → {new}" if new else (old or "?")


def _label(ts: list[_T], i: int) -> int:
    """Tokens taken by a block label at ``i`` (``name:`` or PL/pgSQL ``<<name>>``), or 0."""
    if ts[i].kind == "word" and _mark(ts, i + 1, ":") and not _mark(ts, i + 2, "="):
        return 2
    if (_mark(ts, i, "<") and _mark(ts, i + 1, "<") and _identifier(ts, i + 2)
            and _mark(ts, i + 3, ">") and _mark(ts, i + 4, ">")):
        return 5
    return 0


# --- checks of one statement -------------------------------------------------------------

def _check_update(ts: list[_T], hits: list[_Hit]) -> None:
    i = _skip(ts, 1, "LOW_PRIORITY", "IGNORE")
    if _is(ts, i, "OR"):  # SQLite: UPDATE OR REPLACE t
        i += 2
    table, _ = _name(ts, _skip_only(ts, i))
    if _find(ts, 1, "WHERE") is None:
        hits.append(("update-without-where", {"table": table}))


def _check_delete(ts: list[_T], hits: list[_Hit]) -> None:
    i = _skip(ts, 1, "LOW_PRIORITY", "QUICK", "IGNORE")
    if _is(ts, i, "FROM"):
        i = _skip_only(ts, i + 1)
    table, _ = _name(ts, i)  # DELETE FROM t ... | DELETE t1 FROM t1 JOIN ...
    if _find(ts, 1, "WHERE") is None:
        hits.append(("delete-without-where", {"table": table}))


def _check_drop(ts: list[_T], hits: list[_Hit]) -> None:
    if _is(ts, 1, "TABLE"):
        hits.append(("drop-table", {"table": _names(ts, _skip_if_exists(ts, 2))}))
    elif _is(ts, 1, "DATABASE", "SCHEMA"):
        hits.append(("drop-database", {"kind": ts[1].text.upper(),
                                       "name": _names(ts, _skip_if_exists(ts, 2))}))
    # DROP TEMPORARY TABLE (MySQL) drops a session's own temporary table only.


def _check_truncate(ts: list[_T], hits: list[_Hit]) -> None:
    hits.append(("truncate", {"table": _names(ts, _skip_only(ts, _skip(ts, 1, "TABLE")))}))


def _check_alter(ts: list[_T], hits: list[_Hit]) -> None:
    i = _skip(ts, 1, "ONLINE", "OFFLINE", "IGNORE")
    if _is(ts, i, "MATERIALIZED", "FOREIGN"):
        i += 1
    if not _is(ts, i, "TABLE", "VIEW", "DATABASE", "SCHEMA"):
        return
    is_table = _is(ts, i, "TABLE")
    name, i = _name(ts, _skip_only(ts, _skip_if_exists(ts, i + 1)))
    if _mark(ts, i, "*"):
        i += 1
    action: list[_T] = []
    for t in [*ts[i:], _T("mark", ",", 0)]:
        if t.kind == "mark" and t.text == "," and t.depth == 0:
            _check_alter_action(action, name, is_table, hits)
            action = []
        else:
            action.append(t)


def _check_alter_action(a: list[_T], table: str | None, is_table: bool,
                        hits: list[_Hit]) -> None:
    if _is(a, 0, "DROP") and is_table:
        if _is(a, 1, *_NOT_COLUMN):
            return
        column, _ = _name(a, _skip_if_exists(a, _skip(a, 1, "COLUMN")))
        if column is not None:
            hits.append(("alter-drop-column", {"table": table, "column": column}))
    elif _is(a, 0, "RENAME"):
        if _is(a, 1, "INDEX", "KEY", "CONSTRAINT"):
            return
        if _is(a, 1, "TO", "AS"):  # the table (view, database) itself
            hits.append(("rename", {"name": _arrow(table, _name(a, 2)[0])}))
            return
        old, i = _name(a, _skip(a, 1, "COLUMN"))
        if _is(a, i, "TO"):  # a column: RENAME [COLUMN] a TO b
            hits.append(("rename", {"name": _arrow(f"{table or '?'}.{old}",
                                                   _name(a, i + 1)[0])}))
        else:  # MySQL: RENAME new_name
            hits.append(("rename", {"name": _arrow(table, old)}))
    elif _is(a, 0, "CHANGE") and is_table:  # MySQL: CHANGE [COLUMN] old new definition
        old, i = _name(a, _skip_if_exists(a, _skip(a, 1, "COLUMN")))
        new, _ = _name(a, i)
        if old and new and old.lower() != new.lower():
            hits.append(("rename", {"name": _arrow(f"{table or '?'}.{old}", new)}))


def _check_rename(ts: list[_T], hits: list[_Hit]) -> None:
    """MySQL ``RENAME TABLE a TO b, c TO d`` and ``RENAME USER``."""
    pairs: list[str] = []
    part: list[_T] = []
    old: str | None = None
    for t in [*ts[_skip(ts, 1, "TABLE", "TABLES", "USER"):], _T("mark", ",", 0)]:
        if t.kind == "word" and t.text.upper() == "TO" and t.depth == 0:
            old, part = _render(part), []
        elif t.kind == "mark" and t.text == "," and t.depth == 0:
            pairs.append(_arrow(old, _render(part)))
            old, part = None, []
        else:
            part.append(t)
    hits.append(("rename", {"name": ", ".join(pairs) or None}))


def _check_grant(ts: list[_T], hits: list[_Hit]) -> None:
    to = _find(ts, 1, "TO")
    grantee = None
    if to is not None:
        end = _find(ts, to + 1, "WITH", "IDENTIFIED", "REQUIRE", "AS", "GRANTED")
        grantee = _render(ts[to + 1:end])
    hits.append(("grant", {"grantee": grantee}))


_CHECKS: dict[str, Callable[[list[_T], list[_Hit]], None]] = {
    "UPDATE": _check_update, "DELETE": _check_delete, "DROP": _check_drop,
    "TRUNCATE": _check_truncate, "ALTER": _check_alter, "RENAME": _check_rename,
    "GRANT": _check_grant,
}


def _with_parts(ts: list[_T]) -> tuple[list[list[_T]], int | None]:
    """For ``WITH a AS (...), b AS (...) main``: the bodies and where ``main`` starts."""
    bodies: list[list[_T]] = []
    for j in range(1, len(ts)):
        if ts[j].depth:
            continue
        if _mark(ts, j, "(") and _is(ts, j - 1, "AS", "MATERIALIZED"):
            bodies.append(_inside(ts, j))
        elif _is(ts, j, *_MAIN_AFTER_WITH):
            return bodies, j
    return bodies, None


def _is_call(ts: list[_T]) -> bool:
    """``TRUNCATE(x, 2)``, ``REPLACE(s, a, b)``: a function, not a statement."""
    return _mark(ts, 1, "(")


def _check(ts: list[_T], hits: list[_Hit]) -> None:
    if not ts or ts[0].kind != "word" or _is_call(ts):
        return
    verb = ts[0].text.upper()
    if verb == "WITH":
        bodies, main = _with_parts(ts)
        for body in bodies:  # PostgreSQL: WITH gone AS (DELETE FROM t RETURNING *) ...
            _check(body, hits)
        if main is not None:
            _check(ts[main:], hits)
        return
    check = _CHECKS.get(verb)
    if check is not None:
        check(ts, hits)


# --- routines: statements inside a statement ---------------------------------------------

def _walk(ts: list[_T], dialect: str, hits: list[_Hit]) -> None:
    """Review one piece: a statement, or a piece of a routine body (``IF x THEN stmt``)."""
    i = 0
    while i < len(ts):
        taken = _label(ts, i)
        if taken:
            i += taken
            continue
        word = ts[i].text.upper() if ts[i].kind == "word" else ""
        if word == "BEGIN":
            i = _skip(ts, i + 1, "NOT", "ATOMIC")
            continue
        if word in ("ELSE", "LOOP", "REPEAT"):
            i += 1
            continue
        if word in ("IF", "ELSEIF", "ELSIF", "CASE", "WHEN", "EXCEPTION", "WHILE", "FOR",
                    "FOREACH"):
            stops = ("DO", "LOOP") if word in ("WHILE", "FOR", "FOREACH") else ("THEN", "BEGIN")
            j = _find(ts, i + 1, *stops)
            if j is None:
                return
            i = j if _is(ts, j, "BEGIN") else j + 1
            continue
        if word == "DECLARE":  # DECLARE ... HANDLER FOR condition statement
            handler = _find(ts, i + 1, "HANDLER")
            after = _find(ts, handler + 1, "FOR") if handler is not None else None
            body = _body_start(ts, after + 1) if after is not None else None
            if body is None:
                return
            i = body
            continue
        if word == "DO":  # PostgreSQL DO $$ ... $$ (MySQL's DO expr runs no statement)
            _dollar_bodies(ts[i + 1:], dialect, hits)
            return
        if word == "CREATE":
            body = _routine(ts, i, dialect, hits)
            if body is not None:
                i = body
                continue
        if word == "END":
            return
        _check(ts[i:], hits)
        return


def _body_start(ts: list[_T], start: int) -> int | None:
    for j in range(start, len(ts)):
        if ts[j].depth == 0 and (_is(ts, j, *_BODY_START) or _label(ts, j)):
            return j
    return None


def _routine(ts: list[_T], i: int, dialect: str, hits: list[_Hit]) -> int | None:
    """For ``CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT``: where its body starts (its
    ``$$`` body reviewed here); None for anything else or a body with nothing to read."""
    kind = None
    for j in range(i + 1, len(ts)):
        if ts[j].depth == 0 and _is(ts, j, *_NOT_ROUTINE) and not (
                _mark(ts, j - 1, "=") or _mark(ts, j - 1, "@")):  # DEFINER = user@host
            return None
        if ts[j].depth == 0 and _is(ts, j, "PROCEDURE", "FUNCTION", "TRIGGER", "EVENT"):
            kind = j
            break
    if kind is None:
        return None
    word = ts[kind].text.upper()
    if word == "TRIGGER":
        each = next((j for j in range(kind + 1, len(ts) - 2) if ts[j].depth == 0
                     and _is(ts, j, "FOR") and _is(ts, j + 1, "EACH")), None)
        if each is None:  # SQLite: no FOR EACH ROW needed
            return _find(ts, kind + 1, "BEGIN")
        j = each + 3
        if _is(ts, j, "FOLLOWS", "PRECEDES"):
            j = _name(ts, j + 1)[1]
        return j if j < len(ts) else None
    if word == "EVENT":
        do = _find(ts, kind + 1, "DO")
        return None if do is None else do + 1
    _dollar_bodies(ts[kind + 1:], dialect, hits)
    opening = next((j for j in range(kind + 1, len(ts)) if _mark(ts, j, "(")), None)
    return _body_start(ts, kind + 1 if opening is None else _close(ts, opening) + 1)


def _dollar_bodies(ts: list[_T], dialect: str, hits: list[_Hit]) -> None:
    """Review the ``$$``-quoted bodies among ``ts`` (a function's, a DO block's) when
    their LANGUAGE is SQL or PL/pgSQL."""
    language = _find(ts, 0, "LANGUAGE")
    if language is not None and language + 1 < len(ts):
        name = _unquote(ts[language + 1].text).strip("'").upper()
        if name not in ("SQL", "PLPGSQL"):
            return
    for t in ts:
        if t.depth == 0 and t.kind == "literal" and t.text.startswith("$"):
            tag = _DOLLAR_TAG.match(t.text)
            if tag is None:
                continue
            body = t.text[len(tag.group(0)):]
            if body.endswith(tag.group(0)):
                body = body[:-len(tag.group(0))]
            for piece in _pieces(_tokens(body, dialect)):
                _walk(piece, dialect, hits)


# --- the API ---------------------------------------------------------------------------

def _finding(rule_id: str, statement: int, fills: dict[str, str | None]) -> Finding:
    rule = _BY_ID[rule_id]
    en = {k: v if v is not None else _UNKNOWN.get(k, ("?", "?"))[0] for k, v in fills.items()}
    zh = {k: v if v is not None else _UNKNOWN.get(k, ("?", "?"))[1] for k, v in fills.items()}
    return Finding(rule.id, rule.severity, statement, rule.message_en.format(**en),
                   rule.message_zh.format(**zh))


def review_statement(statement: str, dialect: str = GENERIC) -> list[Finding]:
    """The findings for one statement (its ``statement`` field is 0), in text order.

    A routine's body (MySQL ``DELIMITER`` block, PostgreSQL ``DO``/``$$`` body) is
    reviewed statement by statement.
    """
    hits: list[_Hit] = []
    for piece in _pieces(_tokens(statement, dialect)):
        _walk(piece, dialect, hits)
    findings: list[Finding] = []
    for rule_id, fills in hits:
        finding = _finding(rule_id, 0, fills)
        if finding not in findings:
            findings.append(finding)
    return findings


def statement_kind(statement: str, dialect: str = GENERIC) -> str | None:
    """``ddl``, ``dml`` or None (SELECT, SET, CALL, ...) for the statement as a whole:
    a ``CREATE PROCEDURE`` is DDL whatever its body does."""
    pieces = _pieces(_tokens(statement, dialect))
    return _kind(pieces[0]) if pieces else None


def _kind(ts: list[_T]) -> str | None:
    if not ts or ts[0].kind != "word" or _is_call(ts):
        return None
    verb = ts[0].text.upper()
    if verb == "WITH":
        bodies, main = _with_parts(ts)
        kinds = [_kind(body) for body in bodies] + [_kind(ts[main:]) if main is not None else None]
        return "dml" if "dml" in kinds else None
    if verb in _DDL or (verb == "COMMENT" and _is(ts, 1, "ON")):
        return "ddl"
    return "dml" if verb in _DML else None


def review_item(statements: list[str], dialect: str = GENERIC) -> list[Finding]:
    """Each statement's findings (``statement`` = its 0-based position), then the
    item's own: ``ddl-dml-mixed`` on the first statement that makes the mix."""
    findings = [replace(finding, statement=n)
                for n, statement in enumerate(statements)
                for finding in review_statement(statement, dialect)]
    kinds = [statement_kind(statement, dialect) for statement in statements]
    if "ddl" in kinds and "dml" in kinds:
        ddl, dml = kinds.index("ddl"), kinds.index("dml")
        findings.append(_finding("ddl-dml-mixed", max(ddl, dml),
                                 {"ddl": str(ddl + 1), "dml": str(dml + 1)}))
    return findings


def message(finding: Finding, language: str) -> str:
    """The finding's message in ``language`` (``en`` or ``zh_CN``)."""
    if language == "en":
        return finding.message_en
    if language == "zh_CN":
        return finding.message_zh
    raise ValueError(f"language {language!r} is not one of: {', '.join(LANGUAGES)}")
