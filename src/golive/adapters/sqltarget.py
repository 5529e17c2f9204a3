"""Target databases for order SQL: MariaDB/MySQL (PyMySQL), PostgreSQL (psycopg 3), SQLite.

``open_target(name, url)`` connects once (a time limit on connecting, and the
database's own statement time limit when one is set) and gives a ``SqlTarget``:

* ``execute(statement)`` runs one statement and returns the rows affected. A
  statement the database refused is ``SqlFailed`` naming the database, the
  statement and the database's message; when the connection was lost while it
  ran, nobody knows whether it took effect: that is ``SqlUncertain``.
* ``begin`` / ``commit`` / ``rollback`` group statements (PostgreSQL items).
* ``lock(key, timeout)`` takes the database-side lock that keeps two runners off
  one database (``GET_LOCK`` on MySQL-family, ``pg_advisory_lock`` on PostgreSQL;
  SQLite relies on the store's lock alone).

Passwords are masked in every message.
"""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from golive.domain.sql import MYSQL, POSTGRESQL, SQLITE, dialect_of
from golive.errors import SqlFailed
from golive.store.secrets import mask_text

CONNECT_TIMEOUT = 10


class SqlUncertain(SqlFailed):
    """The connection dropped while the statement ran: it may or may not have taken effect."""


def first_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _connect_args(dialect: str) -> dict[str, object]:
    if dialect in (MYSQL, POSTGRESQL):
        return {"connect_timeout": CONNECT_TIMEOUT}
    if dialect == SQLITE:
        return {"timeout": 30}
    return {}


class SqlTarget:
    def __init__(self, name: str, url: str, statement_timeout: int = 0) -> None:
        self.name = name
        self.dialect = dialect_of(url)
        self.database = str(make_url(url).database or "")
        """The database's own name on its server (golive's ``name`` is only golive's)."""
        self._secret = str(make_url(url).password or "")
        self._engine: Engine = create_engine(url, connect_args=_connect_args(self.dialect),
                                             isolation_level="AUTOCOMMIT")
        self._connection: Connection | None = None
        self._statement_timeout = statement_timeout

    # -- connection -----------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection now, so an unreachable database fails before any statement."""
        if self._connection is not None:
            return
        try:
            self._connection = self._engine.connect()
            self._limit_statements()
        except DBAPIError as exc:
            raise SqlFailed(f"cannot connect to database {self.name}: {self._message(exc)}",
                            database=self.name, statement="") from None
        except SQLAlchemyError as exc:
            raise SqlFailed(f"cannot connect to database {self.name}: {exc}",
                            database=self.name, statement="") from None

    def _limit_statements(self) -> None:
        seconds = self._statement_timeout
        if not seconds or self._connection is None:
            return
        if self.dialect == POSTGRESQL:
            self._connection.exec_driver_sql(f"SET statement_timeout = {int(seconds) * 1000}")
        elif self.dialect == MYSQL:
            try:  # MariaDB: every statement; MySQL knows only max_execution_time (SELECTs)
                self._connection.exec_driver_sql(f"SET SESSION max_statement_time = {seconds}")
            except DBAPIError:
                self._connection.exec_driver_sql(
                    f"SET SESSION max_execution_time = {int(seconds) * 1000}")

    @property
    def connection(self) -> Connection:
        self.connect()
        assert self._connection is not None
        return self._connection

    # -- statements -----------------------------------------------------------------------

    def execute(self, statement: str, label: str = "statement") -> int:
        """Run one statement; the rows it affected (-1 when the driver does not say).

        ``label`` names it in an error (e.g. "statement #3")."""
        try:
            result = self.connection.exec_driver_sql(statement)
            rows = result.rowcount
            result.close()
            return rows if rows is not None else -1
        except DBAPIError as exc:
            kind = SqlUncertain if exc.connection_invalidated else SqlFailed
            why = self._message(exc)
            if kind is SqlUncertain:
                why = f"the connection was lost while it ran ({why}); it may or may not have " \
                      "taken effect"
            raise kind(f"{label} `{self._quote(statement)}` failed on database {self.name}: "
                       f"{why}", database=self.name, statement=statement) from None
        except SQLAlchemyError as exc:
            raise SqlFailed(f"{label} `{self._quote(statement)}` failed on database "
                            f"{self.name}: {mask_text(str(exc), [self._secret])}",
                            database=self.name, statement=statement) from None

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self.execute("ROLLBACK")
        except SqlFailed:
            pass  # a lost connection rolls back on its own

    # -- the database-side lock ---------------------------------------------------------

    def lock(self, key: str, timeout: float) -> bool:
        """Take the database-side lock ``key``; False if still held by another after timeout."""
        if self.dialect == MYSQL:
            got = self.connection.exec_driver_sql(
                "SELECT GET_LOCK(%s, %s)", (f"golive:{key}"[:64], round(max(0.0, timeout), 3))
            ).scalar()
            return bool(got)
        if self.dialect == POSTGRESQL:
            number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            deadline = time.monotonic() + timeout
            while True:
                got = self.connection.exec_driver_sql(
                    "SELECT pg_try_advisory_lock(%s)", (number,)).scalar()
                if got or time.monotonic() >= deadline:
                    return bool(got)
                time.sleep(0.2)
        return True

    def unlock(self, key: str) -> None:
        if self._connection is None:
            return
        try:
            if self.dialect == MYSQL:
                self._connection.exec_driver_sql("SELECT RELEASE_LOCK(%s)",
                                                 (f"golive:{key}"[:64],))
            elif self.dialect == POSTGRESQL:
                number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big",
                                        signed=True)
                self._connection.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (number,))
        except SQLAlchemyError:  # a lost connection (invalidated) released it already
            pass  # closing the connection releases it too

    def _quote(self, statement: str) -> str:
        """The statement as messages show it: one line, the password masked (a statement
        may well contain it: ``ALTER USER ... IDENTIFIED BY``)."""
        return first_line(mask_text(statement, [self._secret]))

    def _message(self, exc: DBAPIError) -> str:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return mask_text(lines[0] if lines else text, [self._secret])

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except SQLAlchemyError:
                pass
            self._connection = None
        self._engine.dispose()


def open_target(name: str, url: str, statement_timeout: int = 0) -> SqlTarget:
    try:
        return SqlTarget(name, url, statement_timeout)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise SqlFailed(f"database {name}: the URL cannot be used: {exc}", database=name,
                        statement="") from None
