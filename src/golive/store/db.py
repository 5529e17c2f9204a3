"""Opening the store: an engine, a session factory, migrations applied on open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from golive.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session; the caller commits. Rolled back on any error, always closed."""
        session = self.sessions()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()


def _enable_sqlite_foreign_keys(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # write-ahead log: one fsync per commit instead of the rollback journal's several
        # (and a journal file made and removed), readers never block the writer;
        # synchronous=FULL keeps every commit durable across a power loss: the SQL ledger
        # must never forget a statement it sent
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


POOL = {"pool_size": 20, "max_overflow": 20}
"""Connections for the server's request threads (``api/app.py`` allows 16) plus the
deployments' progress writers, so a request does not wait for a connection."""


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"the store URL is not valid: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30}, **POOL)
        _enable_sqlite_foreign_keys(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **POOL)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the store's schema to ``revision`` (the newest by default).

    On SQLite, altering a column rebuilds its table (copy, drop, rename); foreign keys are
    off meanwhile, or dropping a table that other rows point to would fail — the pragma
    only takes effect outside a transaction."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as connection:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                with connection.begin():
                    config.attributes["connection"] = connection
                    command.upgrade(config, revision)
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()
    except OperationalError as exc:
        raise StoreError(f"cannot reach the store at {engine.url!r}: {exc.orig}") from None
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the store at {engine.url!r}: {exc}") from None


def open_store(url: str) -> Store:
    """Open (and create or migrate) the store at ``url``."""
    engine = make_engine(url)
    migrate(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))
