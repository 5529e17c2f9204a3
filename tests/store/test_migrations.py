"""The store opens, migrates and holds data on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from golive.services.runtime import Runtime
from golive.store.db import make_engine, migrate, open_store
from golive.store.models import Base, Deployment, DeploymentStep, Order, Project


def test_migrations_create_every_table(runtime: Runtime) -> None:
    tables = set(inspect(runtime.store.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_opening_twice_is_harmless(runtime: Runtime, store_url: str) -> None:
    again = open_store(store_url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(again.engine).get_table_names())
    finally:
        again.close()


def test_the_models_match_the_migrations(runtime: Runtime) -> None:
    """Autogenerate finds nothing to add: every model change came with its migration."""
    with runtime.store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_a_store_made_before_the_pipeline_upgrades_with_its_rows(store_url: str) -> None:
    """0001 → 0002 on a store holding a project, an order, a deployment and a step: the new
    columns get their defaults, the rows stay."""
    engine = make_engine(store_url)
    try:
        migrate(engine, "0001")
        now = datetime(2026, 11, 1, 8, 0)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (id, name, display_name, email, mobile, "
                              "wecom_id, dingtalk_id, feishu_id, language, is_admin, created_at)"
                              " VALUES (1, 'ann', 'Ann', '', '', '', '', '', 'en', :f, :now)"),
                         {"f": False, "now": now})
            conn.execute(text("INSERT INTO projects (id, name, stages, auto_promote, "
                              "auto_release, release_windows, created_at) VALUES "
                              "(1, 'shop', :stages, :f, :f, :empty, :now)"),
                         {"stages": '["test", "prod"]', "f": False, "empty": "[]", "now": now})
            conn.execute(text("INSERT INTO orders (id, project_id, title, state, version, "
                              "created_by_id, created_at, updated_at, sql_approved_by, "
                              "sql_approved_checksums) VALUES (1, 1, 't', 'test:deployed', 1, "
                              "1, :now, :now, '', :empty)"), {"now": now, "empty": "[]"})
            conn.execute(text("INSERT INTO deployments (id, order_id, stage, lane, kind, "
                              "target_release, only_hosts, pause_after_batch, prune_jobs, "
                              "batches_released, status, runner, requested_by, created_at, "
                              "error) VALUES (1, 1, 'test', '', 'iterative', '', :empty, :f, "
                              ":f, 0, 'succeeded', '', 'ann', :now, '')"),
                         {"empty": "[]", "f": False, "now": now})
            conn.execute(text("INSERT INTO deployment_steps (id, deployment_id, name, status, "
                              "message) VALUES (1, 1, 'switch', 'done', 'ok')"))
        migrate(engine)
        with Session(engine) as session:
            project = session.get_one(Project, 1)
            assert (project.release_timezone, project.freeze_dates,
                    project.delete_branch_after_release) == ("UTC", [], False)
            deployment = session.get_one(Deployment, 1)
            assert (deployment.status, deployment.action, deployment.pinned,
                    deployment.resumes, deployment.release_id, deployment.policy) == (
                "succeeded", "deploy", {}, 0, "", "")
            assert session.get_one(DeploymentStep, 1).data == {}
            assert session.get_one(Order, 1).state == "test:deployed"
    finally:
        engine.dispose()
