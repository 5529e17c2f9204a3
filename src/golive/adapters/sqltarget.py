"""Target databases for order SQL, behind one small interface.

``open_target(name, url)`` gives a ``SqlTarget`` whose ``execute`` runs one
statement in its own transaction and returns the rows affected; a failure is a
``SqlFailed`` naming the database, the statement and the database's message.
SQLAlchemy drives the three dialects (sqlite3, PyMySQL, psycopg 3).
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from golive.errors import SqlFailed
from golive.store.secrets import mask_text


def _first_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class SqlTarget:
    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._secret = make_url(url).password or ""
        self._engine: Engine = create_engine(url)

    def execute(self, statement: str) -> int:
        """Run one statement and commit it; the number of rows it affected (or -1)."""
        try:
            with self._engine.begin() as connection:
                result = connection.exec_driver_sql(statement)
                return result.rowcount if result.rowcount is not None else -1
        except DBAPIError as exc:
            message = str(exc.orig) if exc.orig is not None else str(exc)
            raise self._failed(statement, message) from None
        except SQLAlchemyError as exc:
            raise self._failed(statement, str(exc)) from None

    def _failed(self, statement: str, message: str) -> SqlFailed:
        clean = mask_text(message.strip().splitlines()[0] if message.strip() else message,
                          [str(self._secret)])
        return SqlFailed(f"statement `{_first_line(statement)}` failed on database "
                         f"{self.name}: {clean}", database=self.name, statement=statement)

    def close(self) -> None:
        self._engine.dispose()


def open_target(name: str, url: str) -> SqlTarget:
    try:
        return SqlTarget(name, url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise SqlFailed(f"database {name}: the URL cannot be used: {exc}", database=name,
                        statement="") from None
