"""SQL statements of an order: splitting a script, and each statement's identity.

A small scanner walks the script once and knows, per dialect, what is a comment
(``--``, MySQL ``#``, ``/* */``; MySQL's executable ``/*! */`` is kept as code),
a quoted string or identifier (which may contain ``;``), a PostgreSQL dollar-quoted
body (``$$ ... $$``, ``$fn$ ... $fn$``) and a MySQL client ``DELIMITER`` line
that changes the statement terminator for procedures and triggers. A trailing
statement without a terminator is a statement.

A statement's identity is the SHA-256 of its normalized text: comments and runs
of whitespace outside literals do not change it; any change inside a literal does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

GENERIC, MYSQL, POSTGRESQL, SQLITE = "generic", "mysql", "postgresql", "sqlite"

_DELIMITER_LINE = re.compile(r"[ \t]*delimiter[ \t]+(\S+)[ \t]*(?:\r?\n|$)", re.IGNORECASE)
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def dialect_of(url_or_backend: str) -> str:
    """The splitter's dialect for a SQLAlchemy URL or backend name."""
    backend = url_or_backend.split(":", 1)[0].split("+", 1)[0].lower()
    if backend in ("mysql", "mariadb"):
        return MYSQL
    if backend in ("postgresql", "postgres"):
        return POSTGRESQL
    if backend == "sqlite":
        return SQLITE
    return GENERIC


@dataclass(frozen=True)
class Token:
    kind: str  # code | space | comment | literal | end | delimiter
    text: str


class _Scanner:
    def __init__(self, script: str, dialect: str) -> None:
        self.s = script
        self.dialect = dialect
        self.i = 0
        self.delimiter = ";"

    def at_line_start(self) -> bool:
        j = self.i - 1
        while j >= 0 and self.s[j] in " \t":
            j -= 1
        return j < 0 or self.s[j] == "\n"

    def tokens(self) -> Iterator[Token]:
        s, n = self.s, len(self.s)
        while self.i < n:
            token = self._next(s, n)
            yield token

    def _next(self, s: str, n: int) -> Token:
        start, c = self.i, s[self.i]
        if self.dialect in (MYSQL, GENERIC) and self.at_line_start():
            found = _DELIMITER_LINE.match(s, self.i)
            if found:
                self.i = found.end()
                self.delimiter = found.group(1)
                return Token("delimiter", s[start:self.i])
        if s.startswith(self.delimiter, self.i):
            self.i += len(self.delimiter)
            return Token("end", self.delimiter)
        if c.isspace():
            while self.i < n and s[self.i].isspace() and not s.startswith(self.delimiter,
                                                                           self.i):
                self.i += 1
            return Token("space", s[start:self.i])
        if self._line_comment(s, n):
            end = s.find("\n", self.i)
            self.i = n if end < 0 else end
            return Token("comment", s[start:self.i])
        if s.startswith("/*", self.i):
            end = s.find("*/", self.i + 2)
            self.i = n if end < 0 else end + 2
            executable = self.dialect == MYSQL and s.startswith("/*!", start)
            return Token("code" if executable else "comment", s[start:self.i])
        if c in "'\"`":
            self._quoted(s, n, c)
            return Token("literal", s[start:self.i])
        if c == "$" and self.dialect in (POSTGRESQL, GENERIC):
            tag = _DOLLAR_TAG.match(s, self.i)
            if tag and not (start > 0 and (s[start - 1].isalnum() or s[start - 1] == "_")):
                end = s.find(tag.group(0), tag.end())
                self.i = n if end < 0 else end + len(tag.group(0))
                return Token("literal", s[start:self.i])
        self.i += 1
        while self.i < n and (s[self.i].isalnum() or s[self.i] == "_"):
            self.i += 1
        return Token("code", s[start:self.i])

    def _line_comment(self, s: str, n: int) -> bool:
        if s.startswith("--", self.i):
            if self.dialect != MYSQL:
                return True
            after = s[self.i + 2:self.i + 3]
            return after == "" or after.isspace()  # MySQL needs "-- " (or end of line)
        return s[self.i] == "#" and self.dialect == MYSQL

    def _quoted(self, s: str, n: int, quote: str) -> None:
        backslash = self.dialect == MYSQL and quote != "`"
        if quote == "'" and self.dialect in (POSTGRESQL, GENERIC) and self.i > 0 and \
                s[self.i - 1] in "eE" and (self.i < 2 or not s[self.i - 2].isalnum()):
            backslash = True  # PostgreSQL E'...' strings take backslash escapes
        self.i += 1
        while self.i < n:
            c = s[self.i]
            if backslash and c == "\\":
                self.i += 2
                continue
            if c == quote:
                if s[self.i + 1:self.i + 2] == quote:  # doubled quote: an escaped quote
                    self.i += 2
                    continue
                self.i += 1
                return
            self.i += 1


def _statements(script: str, dialect: str) -> Iterator[list[Token]]:
    current: list[Token] = []
    for token in _Scanner(script, dialect).tokens():
        if token.kind in ("end", "delimiter"):
            if any(t.kind in ("code", "literal") for t in current):
                yield current
            current = []
            continue
        current.append(token)
    if any(t.kind in ("code", "literal") for t in current):
        yield current


_WORD_OR_MARK = re.compile(r"\w+|\S")
_EXECUTABLE_COMMENT = re.compile(r"/\*!\d*(.*?)(?:\*/)?\Z", re.DOTALL)


def code_tokens(statement: str, dialect: str = GENERIC) -> Iterator[Token]:
    """What the database reads of ``statement``, comments and whitespace left out.

    Kind ``code`` is one word (keyword or bare identifier) or one punctuation mark;
    kind ``literal`` is a quoted string or identifier (or a dollar-quoted body), whole;
    kind ``end`` is a terminator (``;`` or a ``DELIMITER`` line). The code inside a
    MySQL executable comment ``/*!40101 ... */`` is yielded as code.
    """
    for token in _Scanner(statement, dialect).tokens():
        if token.kind in ("space", "comment"):
            continue
        if token.kind == "code":
            inner = _EXECUTABLE_COMMENT.match(token.text) if token.text.startswith("/*!") \
                else None
            if inner:
                yield from code_tokens(inner.group(1), dialect)
                continue
            for mark in _WORD_OR_MARK.findall(token.text):
                yield Token("code", mark)
        elif token.kind == "delimiter":
            yield Token("end", token.text)
        else:
            yield token


def split_statements(script: str, dialect: str = GENERIC) -> list[str]:
    """The statements of ``script``, each stripped, without its terminator.

    Comments before a statement stay with it (they are part of what the author
    wrote); a script of only comments has no statement.
    """
    return ["".join(t.text for t in tokens).strip() for tokens in _statements(script, dialect)]


def normalize(statement: str, dialect: str = GENERIC) -> str:
    """The statement without comments, whitespace outside literals collapsed to one space."""
    pieces: list[str] = []
    for tokens in _statements(statement, dialect):
        if pieces:
            pieces.append(";")
        for token in tokens:
            if token.kind in ("space", "comment"):
                if pieces and pieces[-1] != " ":
                    pieces.append(" ")
                continue
            pieces.append(token.text)
    return "".join(pieces).strip()


def checksum(statement: str, dialect: str = GENERIC) -> str:
    """Hex SHA-256 of the normalized statement: its identity in the SQL ledger."""
    return hashlib.sha256(normalize(statement, dialect).encode("utf-8")).hexdigest()
