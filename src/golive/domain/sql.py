"""SQL statements of an order: splitting a script and each statement's identity.

The identity is the SHA-256 of the normalized statement: comments and runs of
whitespace outside literals do not change it, any change inside a literal does.
(The splitter is deepened by the SQL issue: DELIMITER blocks, dollar quoting.)
"""

from __future__ import annotations

import hashlib

import sqlparse


def split_statements(script: str) -> list[str]:
    """The statements of ``script``, each stripped, without its trailing ';'."""
    statements = []
    for raw in sqlparse.split(script):
        text = raw.strip()
        if text.endswith(";"):
            text = text[:-1].rstrip()
        if normalize(text):
            statements.append(text)
    return statements


def normalize(statement: str) -> str:
    """The statement with comments removed and whitespace outside literals collapsed."""
    formatted = sqlparse.format(statement, strip_comments=True)
    tokens = sqlparse.parse(formatted)
    pieces: list[str] = []
    for parsed in tokens:
        for token in parsed.flatten():
            if token.is_whitespace:
                if pieces and pieces[-1] != " ":
                    pieces.append(" ")
                continue
            pieces.append(token.value)
    return "".join(pieces).strip().rstrip(";").rstrip()


def checksum(statement: str) -> str:
    """Hex SHA-256 of the normalized statement: its identity in the SQL ledger."""
    return hashlib.sha256(normalize(statement).encode("utf-8")).hexdigest()
