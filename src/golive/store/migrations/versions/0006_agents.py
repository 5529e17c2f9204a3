"""agents: Celery agents and their heartbeat; zones of stages; a deployment's zone and agent

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Times are stored in UTC; MariaDB/MySQL need fsp=6 to keep microseconds.
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("zone", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("runner", sa.String(length=200), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("heartbeat_every", sa.Float(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=False),
        sa.Column("stopped_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
    )
    with op.batch_alter_table("service_stages") as batch:
        batch.add_column(sa.Column("zone", sa.String(length=100), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("zone", sa.String(length=100), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("agent", sa.String(length=100), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("agent")
        batch.drop_column("zone")
    with op.batch_alter_table("service_stages") as batch:
        batch.drop_column("zone")
    op.drop_table("agents")
