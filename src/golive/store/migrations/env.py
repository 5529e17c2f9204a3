"""Alembic environment: golive passes an open connection in ``config.attributes``."""

from alembic import context
from sqlalchemy import create_engine

from golive.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Used by developers making a new migration: `alembic revision --autogenerate`
    # with GOLIVE_ALEMBIC_URL pointing at a scratch database.
    import os

    engine = create_engine(os.environ["GOLIVE_ALEMBIC_URL"])
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
