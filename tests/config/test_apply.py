"""`golive apply`: upserts, idempotence, one transaction, kept / pruned entities."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

from golive.config.apply import ApplyReport
from golive.config.export import export_config
from golive.errors import ConfigError, InputError, PermissionDenied
from golive.services.configuration import apply_file
from golive.services.orders import ItemRequest, create_order
from golive.services.runtime import Runtime
from golive.services.users import add_user, ensure_admin
from golive.store.models import (
    Channel,
    Host,
    JobLedger,
    Member,
    Project,
    Service,
    ServiceStage,
    SqlExecution,
    StageHost,
    TargetDatabase,
    User,
)

ENV = {
    "WEB_PASSWORD": "host-pw-1",
    "SHOP_DB_PASSWORD": "db-pw-1",
    "DINGTALK_URL": "https://127.0.0.1/robot/send?access_token=tok-1",
    "DINGTALK_SECRET": "SEC-1",
}

HOSTS = """\
hosts:
  - {name: box-1, transport: local, root: /srv/golive-test/box-1}
  - {name: box-2, transport: local, root: /srv/golive-test/box-2}
  - {name: web-1, address: 127.0.0.1, user: deploy, password: "${WEB_PASSWORD}"}
"""
DATABASES = """\
databases:
  - {name: shop-test, url: "sqlite:////srv/golive-test/shop-test.db"}
  - {name: shop-prod, url: "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop"}
"""
PROJECTS = """\
projects:
  - name: shop
    stages: [test, staging, prod]
    notify:
      - {type: dingtalk, webhook: "${DINGTALK_URL}", secret: "${DINGTALK_SECRET}",
         events: [deploy_succeeded]}
    members:
      - {user: dev, roles: [developer]}
      - {user: qa, roles: [tester]}
    services:
      - name: api
        repo: /repos/api.git
        main_branch: master
        build: make
        pack: [app, vendor]
        health_check: {http: "http://127.0.0.1/health", timeout: 5}
        stages:
          test: {mode: checkout, path: /srv/api, database: shop-test,
                 lanes: {t1: {hosts: [box-1]}, t2: {hosts: [box-2]}}}
          prod: {path: /srv/api, hosts: [web-1, box-2], database: shop-prod,
                 job_hosts: [box-1], batch: 1}
      - name: web
        repo: /repos/web.git
        stages:
          test: {path: /srv/web, hosts: [box-1]}
"""
BASE = HOSTS + DATABASES + PROJECTS


def write(tmp_path: Path, text: str, name: str = "golive.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def apply(rt: Runtime, path: Path, *, prune: bool = False,
          env: dict[str, str] | None = None) -> ApplyReport:
    """Apply as the admin, in one transaction, as the CLI does."""
    with rt.store.session() as session:
        report = apply_file(session, rt.box, ensure_admin(session), path, prune=prune,
                            env=ENV if env is None else env)
        session.commit()
    return report


def export(rt: Runtime, *, with_secrets: bool = False) -> str:
    with rt.store.session() as session:
        return export_config(session, rt.box, with_secrets=with_secrets)


def changes(report: ApplyReport) -> set[tuple[str, str, str]]:
    """Everything the report lists except what is unchanged."""
    return {(c.kind, c.name, c.action) for c in report.changes if c.action != "unchanged"}


def counts(rt: Runtime) -> dict[str, int]:
    with rt.store.session() as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Host, TargetDatabase, Project, Service, ServiceStage, StageHost,
                              Channel, Member, User)}


def test_apply_creates_every_entity(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    report = apply(sqlite_runtime, write(tmp_path, BASE))
    assert changes(report) == {
        ("host", "box-1", "created"), ("host", "box-2", "created"),
        ("host", "web-1", "created"),
        ("database", "shop-test", "created"), ("database", "shop-prod", "created"),
        ("project", "shop", "created"),
        ("user", "dev", "created"), ("user", "qa", "created"),
        ("member", "shop/dev:developer", "created"), ("member", "shop/qa:tester", "created"),
        ("channel", "shop/dingtalk-1", "created"),
        ("service", "shop/api", "created"), ("service", "shop/web", "created"),
    }
    assert counts(sqlite_runtime) == {
        "hosts": 3, "target_databases": 2, "projects": 1, "services": 2,
        "service_stages": 3, "stage_hosts": 6, "channels": 1, "members": 2,
        "users": 3,  # admin, dev, qa
    }
    with sqlite_runtime.store.session() as session:
        stage = session.scalar(select(ServiceStage).join(Service).where(
            Service.name == "api", ServiceStage.stage == "prod"))
        assert stage is not None and stage.database is not None
        assert stage.database.name == "shop-prod" and stage.batch == "1"
        assert [(h.kind, h.lane, h.host.name) for h in stage.hosts] == [
            ("deploy", "", "web-1"), ("deploy", "", "box-2"), ("job", "", "box-1")]


def test_applying_the_same_file_twice_changes_nothing(runtime: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    assert apply(runtime, path).changed
    before, before_clear = export(runtime), export(runtime, with_secrets=True)
    second = apply(runtime, path)
    assert not second.changed
    assert changes(second) == set()
    assert {c.action for c in second.changes} == {"unchanged"}
    # 3 hosts, 2 databases, the project, 2 members, the channel, 2 services
    assert len(second.changes) == 11
    assert export(runtime) == before
    assert export(runtime, with_secrets=True) == before_clear


def test_a_bad_file_writes_nothing(runtime: Runtime, tmp_path: Path) -> None:
    """Valid hosts and databases come first; a later reference is bad: nothing is written."""
    bad = BASE.replace("hosts: [web-1, box-2]", "hosts: [web-1, web-9]")
    path = write(tmp_path, bad)
    empty = counts(runtime)
    with pytest.raises(ConfigError) as caught:
        apply(runtime, path)
    assert str(caught.value) == (
        f"{path}:27: projects[0].services[0].stages.prod.hosts[1]: host 'web-9' is not "
        "defined: add it under hosts")
    assert counts(runtime) == empty
    assert export(runtime) == "{}\n"


def test_a_bad_file_leaves_an_applied_store_as_it_was(
    sqlite_runtime: Runtime, tmp_path: Path
) -> None:
    apply(sqlite_runtime, write(tmp_path, BASE))
    before = export(sqlite_runtime, with_secrets=True)
    bad = (BASE.replace("/srv/golive-test/box-1", "/srv/elsewhere")
           + "      - name: jobs\n        repo: /repos/jobs.git\n"
           + "        stages: {prod: {path: /srv/jobs, hosts: [box-1], database: shop-main}}\n")
    path = write(tmp_path, bad)
    with pytest.raises(ConfigError) as caught:
        apply(sqlite_runtime, path)
    assert str(caught.value) == (
        f"{path}:35: projects[0].services[2].stages.prod.database: database 'shop-main' is "
        "not defined: add it under databases")
    assert export(sqlite_runtime, with_secrets=True) == before


def test_hosts_and_databases_of_the_store_may_be_referenced(
    sqlite_runtime: Runtime, tmp_path: Path
) -> None:
    apply(sqlite_runtime, write(tmp_path, BASE))
    report = apply(sqlite_runtime, write(tmp_path, PROJECTS, "project-only.yaml"))
    assert changes(report) == {
        ("host", "box-1", "kept"), ("host", "box-2", "kept"), ("host", "web-1", "kept"),
        ("database", "shop-test", "kept"), ("database", "shop-prod", "kept"),
    }
    assert not report.changed
    path = write(tmp_path, PROJECTS.replace("[web-1, box-2]", "[web-1, web-2]"), "bad.yaml")
    with pytest.raises(ConfigError, match=r"bad.yaml:20: projects\[0\]\.services\[0\]\.stages"
                                          r"\.prod\.hosts\[1\]: host 'web-2' is not defined"):
        apply(sqlite_runtime, path)


@pytest.mark.parametrize(
    ("old", "new", "entity", "exported"),
    [
        ("job_hosts: [box-1], batch: 1}", "job_hosts: [box-1], batch: 3}",
         ("service", "shop/api"), "batch: 3\n"),
        ("t2: {hosts: [box-2]}", "t2: {hosts: [box-2, web-1]}",
         ("service", "shop/api"),
         "t2:\n            hosts:\n            - box-2\n            - web-1\n"),
        ("test: {path: /srv/web, hosts: [box-1]}", "test: {path: /srv/web2, hosts: [box-1]}",
         ("service", "shop/web"), "path: /srv/web2\n"),
        ("address: 127.0.0.1, user: deploy,", "address: 127.0.0.1, user: release,",
         ("host", "web-1"), "user: release\n"),
        ("shop-test.db", "shop-test-2.db",
         ("database", "shop-test"), "url: sqlite:////srv/golive-test/shop-test-2.db\n"),
        ("events: [deploy_succeeded]", "events: [deploy_succeeded, deploy_failed]",
         ("channel", "shop/dingtalk-1"), "events:\n    - deploy_succeeded\n    - deploy_failed\n"),
        ("stages: [test, staging, prod]\n",
         "stages: [test, staging, prod]\n    auto_promote: true\n",
         ("project", "shop"), "auto_promote: true\n"),
    ],
    ids=["stage-batch", "lane-hosts", "stage-path", "host-user", "database-url", "channel-events",
         "project-flag"],
)
def test_changing_one_field_updates_exactly_that_entity(
    sqlite_runtime: Runtime, tmp_path: Path, old: str, new: str, entity: tuple[str, str],
    exported: str,
) -> None:
    apply(sqlite_runtime, write(tmp_path, BASE))
    assert exported not in export(sqlite_runtime)
    assert BASE.count(old) == 1
    report = apply(sqlite_runtime, write(tmp_path, BASE.replace(old, new)))
    assert changes(report) == {(*entity, "updated")}
    assert exported in export(sqlite_runtime)
    assert not apply(sqlite_runtime, write(tmp_path, BASE.replace(old, new))).changed


def test_a_new_role_is_a_new_member_and_the_old_one_is_kept_until_pruned(
    sqlite_runtime: Runtime, tmp_path: Path
) -> None:
    """Members are (user, role) pairs: changing a role adds one and keeps the other."""
    apply(sqlite_runtime, write(tmp_path, BASE))
    changed = write(tmp_path, BASE.replace("{user: qa, roles: [tester]}",
                                           "{user: qa, roles: [releaser]}"))
    report = apply(sqlite_runtime, changed)
    assert changes(report) == {("member", "shop/qa:releaser", "created"),
                               ("member", "shop/qa:tester", "kept")}
    assert "- user: qa\n    roles:\n    - releaser\n    - tester\n" in export(sqlite_runtime)
    report = apply(sqlite_runtime, changed, prune=True)
    assert changes(report) == {("member", "shop/qa:tester", "removed")}
    assert "- user: qa\n    roles:\n    - releaser\n" in export(sqlite_runtime)
    assert counts(sqlite_runtime)["members"] == 2


WITHOUT_WEB = BASE.replace(
    "      - name: web\n        repo: /repos/web.git\n        stages:\n"
    "          test: {path: /srv/web, hosts: [box-1]}\n", "")


def test_a_service_not_in_the_file_is_kept_unless_pruned(runtime: Runtime, tmp_path: Path) -> None:
    assert WITHOUT_WEB != BASE
    apply(runtime, write(tmp_path, BASE))
    report = apply(runtime, write(tmp_path, WITHOUT_WEB))
    assert changes(report) == {("service", "shop/web", "kept")}
    assert not report.changed
    assert "name: web\n" in export(runtime)
    assert counts(runtime)["services"] == 2

    report = apply(runtime, write(tmp_path, WITHOUT_WEB), prune=True)
    assert changes(report) == {("service", "shop/web", "removed")}
    assert "name: web\n" not in export(runtime)
    assert counts(runtime)["services"] == 1
    assert counts(runtime)["service_stages"] == 2  # its stage went with it


def test_prune_refuses_to_remove_a_service_with_orders(runtime: Runtime, tmp_path: Path) -> None:
    apply(runtime, write(tmp_path, BASE))
    with runtime.store.session() as session:
        create_order(session, ensure_admin(session), "shop", [ItemRequest("web", "feature/x")])
        session.commit()
    before = export(runtime, with_secrets=True)
    # a new host comes first in the file: the refusal must not leave it half-applied
    text = WITHOUT_WEB.replace("hosts:\n", "hosts:\n  - {name: box-3, transport: local, "
                                           "root: /srv/golive-test/box-3}\n", 1)
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        apply(runtime, path, prune=True)
    assert str(caught.value) == ("service shop/web is not in the file but has orders; "
                                 "it cannot be removed with --prune")
    assert export(runtime, with_secrets=True) == before
    assert counts(runtime)["hosts"] == 3
    # without --prune the service is simply kept, and the new host is written
    report = apply(runtime, path)
    assert changes(report) == {("host", "box-3", "created"), ("service", "shop/web", "kept")}


def test_unused_hosts_and_databases_not_in_the_file_are_pruned(
    runtime: Runtime, tmp_path: Path
) -> None:
    spare = BASE.replace("hosts:\n", "hosts:\n  - {name: spare-1, transport: local, "
                                     "root: /srv/golive-test/spare}\n", 1)
    spare = spare.replace("databases:\n", "databases:\n  - {name: old-db, "
                                          "url: \"sqlite:////srv/golive-test/old.db\"}\n", 1)
    apply(runtime, write(tmp_path, spare))
    # web-1 and shop-prod leave the file but stay in use by shop/api
    smaller = (BASE.replace('  - {name: web-1, address: 127.0.0.1, user: deploy, '
                            'password: "${WEB_PASSWORD}"}\n', "")
               .replace('  - {name: shop-prod, url: "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}'
                        '@127.0.0.1/shop"}\n', ""))
    path = write(tmp_path, smaller)
    report = apply(runtime, path)
    assert changes(report) == {
        ("host", "spare-1", "kept"), ("host", "web-1", "kept"),
        ("database", "old-db", "kept"), ("database", "shop-prod", "kept"),
    }
    assert counts(runtime)["hosts"] == 4 and counts(runtime)["target_databases"] == 3

    report = apply(runtime, path, prune=True)
    assert changes(report) == {
        ("host", "spare-1", "removed"), ("host", "web-1", "kept"),
        ("database", "old-db", "removed"), ("database", "shop-prod", "kept"),
    }
    exported = export(runtime)
    assert "spare-1" not in exported and "old-db" not in exported
    assert "name: web-1" in exported and "name: shop-prod" in exported


LEDGER_BEFORE = """\
hosts:
  - {name: box-1, transport: local, root: /srv/golive-test/box-1}
  - {name: jobs-1, transport: local, root: /srv/golive-test/jobs-1}
databases:
  - {name: shop-old, url: "sqlite:////srv/golive-test/old.db"}
projects:
  - name: shop
    services:
      - name: api
        repo: /repos/api.git
        stages:
          prod: {path: /srv/api, hosts: [box-1], job_hosts: [jobs-1], database: shop-old}
"""
LEDGER_AFTER = """\
hosts:
  - {name: box-1, transport: local, root: /srv/golive-test/box-1}
projects:
  - name: shop
    services:
      - name: api
        repo: /repos/api.git
        stages:
          prod: {path: /srv/api, hosts: [box-1]}
"""


@pytest.mark.parametrize("in_ledger", [False, True], ids=["no-ledger", "in-ledger"])
def test_prune_keeps_hosts_and_databases_the_ledger_names(
    runtime: Runtime, tmp_path: Path, in_ledger: bool
) -> None:
    """No stage names them any more, but SQL ran on the database and a job on the host."""
    apply(runtime, write(tmp_path, LEDGER_BEFORE))
    if in_ledger:
        with runtime.store.session() as session:
            order = create_order(session, ensure_admin(session), "shop",
                                 [ItemRequest("api", "feature/x", "SELECT 1;")])
            database = session.scalar(select(TargetDatabase).where(
                TargetDatabase.name == "shop-old"))
            host = session.scalar(select(Host).where(Host.name == "jobs-1"))
            assert database is not None and host is not None
            statement = order.items[0].statements[0]
            session.add(SqlExecution(database_id=database.id, order_id=order.id,
                                     statement_id=statement.id, checksum=statement.checksum,
                                     stage="prod", status="success", executed_by="admin"))
            session.add(JobLedger(service_id=order.items[0].service_id, stage="prod",
                                  host_id=host.id, job_name="nightly",
                                  definition_checksum="0" * 64))
            session.commit()
    report = apply(runtime, write(tmp_path, LEDGER_AFTER), prune=True)
    action = "kept" if in_ledger else "removed"
    assert changes(report) == {("service", "shop/api", "updated"),
                               ("host", "jobs-1", action), ("database", "shop-old", action)}
    with runtime.store.session() as session:
        assert session.scalar(select(func.count()).select_from(SqlExecution)) == int(in_ledger)
        assert session.scalar(select(func.count()).select_from(JobLedger)) == int(in_ledger)


def test_channels_and_members_not_in_the_file(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    apply(sqlite_runtime, write(tmp_path, BASE))
    fewer = (BASE.replace('    notify:\n      - {type: dingtalk, webhook: "${DINGTALK_URL}", '
                          'secret: "${DINGTALK_SECRET}",\n         events: [deploy_succeeded]}\n',
                          "    notify: []\n")
             .replace("      - {user: qa, roles: [tester]}\n", ""))
    path = write(tmp_path, fewer)
    assert changes(apply(sqlite_runtime, path)) == {
        ("channel", "shop/dingtalk-1", "kept"), ("member", "shop/qa:tester", "kept")}
    assert changes(apply(sqlite_runtime, path, prune=True)) == {
        ("channel", "shop/dingtalk-1", "removed"), ("member", "shop/qa:tester", "removed")}
    assert counts(sqlite_runtime)["channels"] == 0
    assert counts(sqlite_runtime)["members"] == 1
    assert counts(sqlite_runtime)["users"] == 3  # the user stays; only the role went


def test_only_a_site_admin_may_apply(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    with sqlite_runtime.store.session() as session:
        bob = add_user(session, ensure_admin(session), "bob")
        session.commit()
        with pytest.raises(PermissionDenied, match="applying a configuration needs a site admin; "
                                                   "bob is not one"):
            apply_file(session, sqlite_runtime.box, bob, path, env=ENV)
    assert counts(sqlite_runtime)["hosts"] == 0


def test_a_secret_with_clear_text_around_a_variable_keeps_no_template(
    sqlite_runtime: Runtime, tmp_path: Path
) -> None:
    from golive.services.configuration import apply_file
    from golive.services.users import ensure_admin
    from golive.store.models import Host

    config = tmp_path / "golive.yaml"
    config.write_text('hosts:\n  - {name: w1, address: 127.0.0.1, password: "abc${PW}"}\n'
                      '  - {name: w2, address: 127.0.0.1, password: "${PW}"}\n')
    with sqlite_runtime.store.session() as session:
        admin = ensure_admin(session)
        apply_file(session, sqlite_runtime.box, admin, config, env={"PW": "secret"})
        session.commit()
        templates = {h.name: h.password_template for h in session.query(Host)}
    assert templates == {"w1": None, "w2": "${PW}"}


def test_a_masked_url_shows_three_stars() -> None:
    from golive.store.secrets import mask_url

    assert mask_url("mysql+pymysql://deploy:p%40ss@db:3306/shop") == \
        "mysql+pymysql://deploy:***@db:3306/shop"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
