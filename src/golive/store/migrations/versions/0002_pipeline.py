"""the pipeline around the engine: locks, lanes, occupancy, resumable deployments, windows

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# Times are stored in UTC; MariaDB/MySQL need fsp=6 to keep microseconds.
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns(table: str, *columns: sa.Column) -> None:
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.add_column(column)


def _json_not_null(table: str, column: str, empty: object) -> None:
    """Existing rows get an empty value, then the column is NOT NULL like the model says
    (MySQL allows no default on a JSON column, so it is filled, not defaulted)."""
    rows = sa.table(table, sa.column(column, sa.JSON()))
    op.execute(rows.update().values({column: empty}))
    with op.batch_alter_table(table) as batch:
        batch.alter_column(column, existing_type=sa.JSON(), nullable=False)


def upgrade() -> None:
    _columns(
        "projects",
        sa.Column("release_timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("freeze_dates", sa.JSON(), nullable=True),
        sa.Column("delete_branch_after_release", sa.Boolean(), nullable=False,
                  server_default=sa.false()),
    )
    _columns(
        "deployments",
        sa.Column("action", sa.String(20), nullable=False, server_default="deploy"),
        sa.Column("release_id", sa.String(100), nullable=False, server_default=""),
        sa.Column("pinned", sa.JSON(), nullable=True),
        sa.Column("resumes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("not_before", TIMESTAMP, nullable=True),
        sa.Column("accept_unverified_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("policy", sa.String(20), nullable=False, server_default=""),
    )
    _columns("deployment_steps", sa.Column("data", sa.JSON(), nullable=True))
    _json_not_null("projects", "freeze_dates", [])
    _json_not_null("deployments", "pinned", {})
    _json_not_null("deployment_steps", "data", {})
    op.create_table(
        "deploy_locks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("lane", sa.String(100), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("runner", sa.String(200), nullable=False),
        sa.Column("acquired_at", TIMESTAMP, nullable=True),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], ondelete="CASCADE",
                                name=op.f("fk_deploy_locks_service_id_services")),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="SET NULL",
                                name=op.f("fk_deploy_locks_deployment_id_deployments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_locks")),
        sa.UniqueConstraint("service_id", "stage", "lane",
                            name=op.f("uq_deploy_locks_service_id")),
    )
    op.create_table(
        "lane_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("lane", sa.String(100), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("held_by", sa.String(100), nullable=False),
        sa.Column("held_since", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE",
                                name=op.f("fk_lane_holds_project_id_projects")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE",
                                name=op.f("fk_lane_holds_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lane_holds")),
        sa.UniqueConstraint("project_id", "stage", "lane",
                            name=op.f("uq_lane_holds_project_id")),
    )
    op.create_table(
        "occupancy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("lane", sa.String(100), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("since", TIMESTAMP, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], ondelete="CASCADE",
                                name=op.f("fk_occupancy_service_id_services")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE",
                                name=op.f("fk_occupancy_order_id_orders")),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="SET NULL",
                                name=op.f("fk_occupancy_deployment_id_deployments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_occupancy")),
        sa.UniqueConstraint("service_id", "stage", "lane",
                            name=op.f("uq_occupancy_service_id")),
    )
    op.create_table(
        "main_moves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], ondelete="CASCADE",
                                name=op.f("fk_main_moves_service_id_services")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE",
                                name=op.f("fk_main_moves_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_main_moves")),
    )


def downgrade() -> None:
    for table in ("main_moves", "occupancy", "lane_holds", "deploy_locks"):
        op.drop_table(table)
    with op.batch_alter_table("deployment_steps") as batch:
        batch.drop_column("data")
    with op.batch_alter_table("deployments") as batch:
        for column in ("policy", "accept_unverified_by", "not_before", "resumes", "pinned",
                       "release_id", "action"):
            batch.drop_column(column)
    with op.batch_alter_table("projects") as batch:
        for column in ("delete_branch_after_release", "freeze_dates", "release_timezone"):
            batch.drop_column(column)
