"""`golive export`: the round trip with apply, placeholders, and secrets at rest."""

from __future__ import annotations

import stat
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from golive.config.apply import ApplyReport
from golive.config.export import export_config
from golive.config.loader import load_file, load_text
from golive.errors import PermissionDenied, SecretError
from golive.services.configuration import apply_file, export_text
from golive.services.runtime import Runtime, open_runtime
from golive.services.users import add_user, ensure_admin
from golive.settings import get_settings
from golive.store.models import Base

SECRETS = {
    "WEB_PASSWORD": "host-pw-Zq1",
    "SHOP_DB_PASSWORD": "db-pw-Zq2",
    "DINGTALK_URL": "https://127.0.0.1/robot/send?access_token=tok-Zq3",
    "DINGTALK_SECRET": "SEC-Zq4",
}
CLEAR_IN_FILE = ("mail-pw-Zq5", "clear-host-pw-Zq6", "clear-db-pw-Zq7")
EVERY_SECRET = (*SECRETS.values(), "tok-Zq3", *CLEAR_IN_FILE)
GENERATED = {  # the placeholders export invents for secrets written in clear
    "HOST_WEB_2_PASSWORD": "clear-host-pw-Zq6",
    "DB_SHOP_STG_PASSWORD": "clear-db-pw-Zq7",
    "CHANNEL_SHOP_MAIL_SMTP_PASSWORD": "mail-pw-Zq5",
}

# Every field of the schema, in the order export writes it (hosts, databases and projects
# by name), so that the exported file reads back as this very configuration.
FULL = """\
hosts:
  - name: box-1
    transport: local
    root: /srv/golive-test/box-1
    zone: lab
    labels: {role: app, dc: local}
  - name: web-1
    address: 127.0.0.1
    port: 2222
    user: deploy
    key: ~/.ssh/id_ed25519
    password: "${WEB_PASSWORD}"
    proxy_jump: bastion
    zone: dc1
  - {name: web-2, address: 127.0.0.1, user: deploy, password: clear-host-pw-Zq6}
databases:
  - name: shop-prod
    url: "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop?charset=utf8mb4"
  - {name: shop-stg, url: "postgresql+psycopg://deploy:clear-db-pw-Zq7@127.0.0.1:5432/shop_stg"}
  - {name: shop-test, url: "sqlite:////srv/golive-test/shop-test.db"}
projects:
  - name: shop
    stages: [test, staging, prod]
    auto_promote: true
    auto_release: true
    release_windows: ["Mon-Thu 10:00-16:00"]
    notify:
      - {type: dingtalk, name: ding, language: zh_CN, events: [deploy_succeeded, deploy_failed],
         webhook: "${DINGTALK_URL}", secret: "${DINGTALK_SECRET}"}
      - {type: email, name: mail, smtp_host: 127.0.0.1, smtp_port: 2525, smtp_user: golive,
         smtp_password: mail-pw-Zq5, smtp_tls: none, mail_from: golive@example.com,
         to: [ops@example.com]}
    members:
      - {user: dev, roles: [developer, owner]}
      - {user: qa, roles: [tester]}
    services:
      - name: api
        repo: git@127.0.0.1:shop/api.git
        main_branch: master
        build: composer install --no-dev
        build_timeout: 900
        pack: [app, public, vendor]
        exclude: ["*.log", "tests/"]
        shared: [.env, storage]
        post_deploy: [sudo systemctl reload php-fpm]
        rollback_hooks: [sudo systemctl reload php-fpm]
        health_check: {command: "curl -fs http://127.0.0.1/health", timeout: 3, retries: 5}
        stages:
          test: {mode: checkout, path: /srv/api, database: shop-test,
                 lanes: {t1: {hosts: [box-1]}, t2: {hosts: [web-2]}}}
          staging: {mode: checkout, hosts: [web-2], path: /srv/api, database: shop-stg}
          prod: {mode: artifact, hosts: [web-1, web-2], path: /srv/api, database: shop-prod,
                 job_hosts: [box-1], batch: 1, keep_releases: 3}
      - name: web
        repo: /repos/web.git
        health_check: {http: "http://127.0.0.1/"}
        stages:
          test: {path: /srv/web, hosts: [box-1]}
  - name: tools
    stages: [prod]
"""


def write(tmp_path: Path, body: str, name: str = "golive.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def apply(rt: Runtime, path: Path, env: dict[str, str], *, prune: bool = False) -> ApplyReport:
    with rt.store.session() as session:
        report = apply_file(session, rt.box, ensure_admin(session), path, prune=prune, env=env)
        session.commit()
    return report


def export(rt: Runtime, *, with_secrets: bool = False) -> str:
    with rt.store.session() as session:
        return export_config(session, rt.box, with_secrets=with_secrets)


def raw_rows(rt: Runtime) -> str:
    """Every row of every table, as the database hands it out."""
    dump = []
    with rt.store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(text(f"SELECT * FROM {table.name}")):
                dump.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(dump)


def test_export_writes_every_field_back(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    apply(sqlite_runtime, path, SECRETS)
    exported = load_text(export(sqlite_runtime, with_secrets=True), "export.yaml", {})
    assert exported.config == load_file(path, SECRETS).config


def test_export_writes_placeholders_for_secrets(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    apply(sqlite_runtime, write(tmp_path, FULL), SECRETS)
    exported = export(sqlite_runtime)
    for secret in EVERY_SECRET:
        assert secret not in exported
    # the ${VAR} text of the applied file where there was one ...
    assert "  password: ${WEB_PASSWORD}\n" in exported
    assert ("  url: mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop?charset=utf8mb4\n"
            in exported)
    assert "    webhook: ${DINGTALK_URL}\n    secret: ${DINGTALK_SECRET}\n" in exported
    # ... else a generated name
    assert "  password: ${HOST_WEB_2_PASSWORD}\n" in exported
    assert ("  url: postgresql+psycopg://deploy:${DB_SHOP_STG_PASSWORD}@127.0.0.1:5432/shop_stg\n"
            in exported)
    assert "    smtp_password: ${CHANNEL_SHOP_MAIL_SMTP_PASSWORD}\n" in exported
    # a URL without a password is not a secret
    assert "  url: sqlite:////srv/golive-test/shop-test.db\n" in exported

    clear = export(sqlite_runtime, with_secrets=True)
    for secret in EVERY_SECRET:
        assert secret in clear
    assert "${" not in clear


def test_a_generated_database_placeholder(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, """\
        databases:
          - {name: shop-prod, url: "mysql+pymysql://deploy:s3cr3t@127.0.0.1/shop"}
        """)
    apply(sqlite_runtime, path, {})
    assert export(sqlite_runtime) == (
        "databases:\n- name: shop-prod\n"
        "  url: mysql+pymysql://deploy:${DB_SHOP_PROD_PASSWORD}@127.0.0.1/shop\n")


def test_round_trip_with_secrets_in_clear(runtime: Runtime, tmp_path: Path) -> None:
    apply(runtime, write(tmp_path, FULL), SECRETS)
    hidden, clear = export(runtime), export(runtime, with_secrets=True)
    report = apply(runtime, write(tmp_path, clear, "export.yaml"), {})
    assert not report.changed, [c for c in report.changes if c.action != "unchanged"]
    # nothing changed, not even the ${VAR} names the placeholders are written with
    assert export(runtime) == hidden
    assert export(runtime, with_secrets=True) == clear


def test_round_trip_with_placeholders(runtime: Runtime, tmp_path: Path) -> None:
    apply(runtime, write(tmp_path, FULL), SECRETS)
    hidden, clear = export(runtime), export(runtime, with_secrets=True)
    report = apply(runtime, write(tmp_path, hidden, "export.yaml"), {**SECRETS, **GENERATED})
    assert not report.changed, [c for c in report.changes if c.action != "unchanged"]
    assert export(runtime) == hidden
    assert export(runtime, with_secrets=True) == clear


def test_secrets_are_encrypted_at_rest(runtime: Runtime, tmp_path: Path) -> None:
    apply(runtime, write(tmp_path, FULL), SECRETS)
    rows = raw_rows(runtime)
    for secret in EVERY_SECRET:
        assert secret not in rows
    # what is stored in clear: the ${VAR} text and the masked URL
    assert "${WEB_PASSWORD}" in rows and "${DINGTALK_SECRET}" in rows
    assert "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop?charset=utf8mb4" in rows
    assert "web-1" in rows and "/srv/golive-test/box-1" in rows  # the rows are really there


def test_a_database_url_template_with_a_clear_password_is_not_stored(
    sqlite_runtime: Runtime, tmp_path: Path
) -> None:
    path = write(tmp_path, """\
        databases:
          - {name: shop, url: "mysql+pymysql://deploy:clear-db-pw-Zq7@${DB_HOST}/shop"}
        """)
    env = {"DB_HOST": "127.0.0.1"}
    apply(sqlite_runtime, path, env)
    assert "clear-db-pw-Zq7" not in raw_rows(sqlite_runtime)
    assert export(sqlite_runtime) == (
        "databases:\n- name: shop\n"
        "  url: mysql+pymysql://deploy:${DB_SHOP_PASSWORD}@127.0.0.1/shop\n")
    assert not apply(sqlite_runtime, path, env).changed
    assert "clear-db-pw-Zq7" not in raw_rows(sqlite_runtime)


def test_the_key_file_is_created_private_and_reused(
    sqlite_runtime: Runtime, tmp_path: Path, golive_home: Path
) -> None:
    key_file = golive_home / "secret.key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    apply(sqlite_runtime, write(tmp_path, FULL), SECRETS)
    clear = export(sqlite_runtime, with_secrets=True)
    reopened = open_runtime(get_settings())
    try:
        assert key_file.read_bytes() == key
        assert export(reopened, with_secrets=True) == clear
    finally:
        reopened.close()


def test_a_wrong_key_is_a_secret_error(
    sqlite_runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, FULL)
    apply(sqlite_runtime, path, SECRETS)
    monkeypatch.setenv("GOLIVE_SECRET_KEY", Fernet.generate_key().decode())
    wrong = open_runtime(get_settings())
    try:
        message = ("a stored secret cannot be decrypted: GOLIVE_SECRET_KEY or the key file is "
                   "not the key it was sealed with")
        with pytest.raises(SecretError) as caught:
            export(wrong)
        assert str(caught.value) == message
        with pytest.raises(SecretError):
            apply(wrong, path, SECRETS)
    finally:
        wrong.close()
    monkeypatch.setenv("GOLIVE_SECRET_KEY", "not-a-key")
    with pytest.raises(SecretError, match="not a valid Fernet key"):
        open_runtime(get_settings())


def test_only_a_site_admin_exports(sqlite_runtime: Runtime, tmp_path: Path) -> None:
    """The export names every host and database: only a site admin reads it, with or
    without the secrets."""
    apply(sqlite_runtime, write(tmp_path, FULL), SECRETS)
    with sqlite_runtime.store.session() as session:
        admin = ensure_admin(session)
        bob = add_user(session, admin, "bob")
        assert "${WEB_PASSWORD}" in export_text(session, sqlite_runtime.box, admin,
                                                with_secrets=False)
        for with_secrets in (False, True):
            with pytest.raises(PermissionDenied,
                               match="exporting the configuration needs a site admin"):
                export_text(session, sqlite_runtime.box, bob, with_secrets=with_secrets)
