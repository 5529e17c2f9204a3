"""The project settings pages: the list, a project's settings for its owners (members
changed by forms, a channel's test message to a real HTTP robot, a host checked and its
key trusted), golive.yaml exported with ${VAR} and imported with errors beside the text;
what a developer sees and is refused; both languages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from golive.services.runtime import Runtime
from golive.store.models import Host, Member, Project, User
from golive.testing.receivers import Robot, robot
from golive.testing.sshd import SshServer
from golive.testing.web import csrf_of, give_password, log_in
from golive.testing.world import apply_config, local_hosts, make_repo

DB_PASSWORD = "s3cr3t-db-pw"
HOOK_SECRET = "hook-signing-secret"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


@dataclass(frozen=True)
class World:
    root: Path
    runtime: Runtime
    robot: Robot
    env: dict[str, str]


def _config(root: Path, repo_url: str) -> dict[str, object]:
    checkout = {"mode": "checkout", "path": "srv/api"}
    return {
        "hosts": local_hosts(root, ["h-test", "h-test2", "h-prod"]),
        "databases": [{"name": "shop-prod",
                       "url": "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop"}],
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "release_windows": ["Mon-Fri 10:00-16:00"],
            "members": [{"user": "olga", "roles": ["owner"]},
                        {"user": "dev", "roles": ["developer"]},
                        {"user": "tess", "roles": ["tester"]}],
            "notify": [{"type": "webhook", "name": "hook", "webhook": "${HOOK_URL}",
                        "secret": "${HOOK_SECRET}"}],
            "services": [{"name": "api", "repo": repo_url, "build": "true", "stages": {
                "test": {**checkout, "lanes": {"t1": {"hosts": ["h-test"]},
                                               "t2": {"hosts": ["h-test2"]}}},
                "prod": {**checkout, "hosts": ["h-prod"], "database": "shop-prod",
                         "keep_releases": 4}}}],
        }]}


@pytest.fixture
def world(tmp_path: Path, sqlite_runtime: Runtime) -> Iterator[World]:
    """Project shop (test with lanes t1/t2, prod with a MySQL database whose password is a
    ${VAR}); olga owner, dev developer, tess tester, carol no role; a webhook channel to a
    real signing robot."""
    repo = make_repo(tmp_path, "api", {"app.txt": "v1\n"})
    with robot("webhook", secret=HOOK_SECRET) as hook:
        env = {"SHOP_DB_PASSWORD": DB_PASSWORD, "HOOK_URL": hook.url,
               "HOOK_SECRET": HOOK_SECRET}
        apply_config(sqlite_runtime, tmp_path / "golive.yaml", _config(tmp_path, repo.url), env)
        yield World(tmp_path, sqlite_runtime, hook, env)


def login(api: TestClient, world: World, name: str, *, admin: bool = False) -> None:
    log_in(api, name, give_password(world.runtime, name, admin=admin))


def roles_of(world: World, user: str) -> set[str]:
    with world.runtime.store.session() as session:
        return set(session.scalars(
            select(Member.role).join(User, Member.user_id == User.id)
            .join(Project, Member.project_id == Project.id)
            .where(User.name == user, Project.name == "shop")))


def flash_after(api: TestClient, response: object) -> str:
    """The text of the page a write redirected to (its flash message in it)."""
    assert getattr(response, "status_code", None) == 303, getattr(response, "text", "")
    page = api.get(response.headers["location"])  # type: ignore[attr-defined]
    found = re.search(r'<div class="flash (\w+)" role="status">(.*?)</div>', page.text, re.S)
    assert found is not None, "no flash message on the page"
    return f"{found.group(1)}: {found.group(2)}"


# -- reading ---------------------------------------------------------------------------------


def test_the_list_shows_my_projects_with_my_roles(api: TestClient, world: World) -> None:
    login(api, world, "dev")
    page = api.get("/projects")
    assert page.status_code == 200
    assert 'data-name="shop"' in page.text and "developer" in page.text
    api.cookies.clear()
    login(api, world, "carol")
    assert 'data-name="shop"' not in api.get("/projects").text
    assert api.get("/projects/shop").status_code == 403


def test_an_owner_sees_every_section_and_no_secret(api: TestClient, world: World) -> None:
    login(api, world, "olga")
    page = api.get("/projects/shop")
    assert page.status_code == 200, page.text
    text = page.text
    for section in ("settings", "services", "lanes", "hosts", "databases", "members",
                    "channels", "release-windows"):
        assert f'id="{section}"' in text
    assert 'data-name="api"' in text and 'data-name="prod"' in text  # the service, a stage
    assert 'data-name="test/t1"' in text and 'data-name="test/t2"' in text
    assert 'data-name="h-prod"' in text and 'data-name="shop-prod"' in text
    assert "Mon-Fri 10:00-16:00" in text
    assert "mysql+pymysql://deploy:***@127.0.0.1/shop" in text
    assert DB_PASSWORD not in text and HOOK_SECRET not in text
    assert world.robot.token not in text
    for action in ("member.add", "member.set_roles", "member.remove", "notify.test"):
        assert f'data-action="{action}"' in text
    # reaching a host is a site admin's: no check button for an owner
    assert 'data-action="host.check"' not in text


def test_a_developer_gets_no_edit_buttons_and_a_refused_post(api: TestClient,
                                                             world: World) -> None:
    login(api, world, "dev")
    page = api.get("/projects/shop")
    assert page.status_code == 200
    assert 'id="read-only"' in page.text
    assert "data-action=" not in page.text.split('id="settings"')[1]
    refused = api.post("/projects/shop/members", data={
        "csrf_token": csrf_of(page.text), "user": "carol", "roles": "tester"})
    assert refused.status_code == 403
    assert "needs the role owner" in refused.text
    assert roles_of(world, "carol") == set()
    refused = api.post("/projects/shop/channels/hook/test",
                       data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403 and world.robot.received == []


# -- members ---------------------------------------------------------------------------------


def test_an_owner_adds_a_member_changes_the_roles_and_removes_them(
        api: TestClient, world: World) -> None:
    give_password(world.runtime, "carol")
    login(api, world, "olga")
    csrf = csrf_of(api.get("/projects/shop").text)
    added = api.post("/projects/shop/members", data={"csrf_token": csrf, "user": "carol",
                                                     "roles": ["tester"]},
                     follow_redirects=False)
    assert "carol is now a member of shop" in flash_after(api, added)
    assert roles_of(world, "carol") == {"tester"}
    page = api.get("/projects/shop")
    row = page.text.split('<tr data-name="carol">')[1].split("</tr>")[0]
    assert re.search(r'value="tester"\s+checked', row)

    changed = api.post("/projects/shop/members/carol", follow_redirects=False, data={
        "csrf_token": csrf, "roles": ["developer", "releaser"]})
    assert "The roles of carol are saved" in flash_after(api, changed)
    assert roles_of(world, "carol") == {"developer", "releaser"}

    removed = api.post("/projects/shop/members/carol/remove", data={"csrf_token": csrf},
                       follow_redirects=False)
    assert "carol is no longer a member of shop" in flash_after(api, removed)
    assert roles_of(world, "carol") == set()


def test_member_errors_are_shown_beside_the_field(api: TestClient, world: World) -> None:
    login(api, world, "olga")
    csrf = csrf_of(api.get("/projects/shop").text)
    unknown = api.post("/projects/shop/members", data={"csrf_token": csrf, "user": "nobody",
                                                       "roles": ["tester"]})
    assert unknown.status_code == 422
    assert re.search(r'id="error-user">user nobody does not exist<', unknown.text)
    assert 'value="nobody"' in unknown.text  # what was typed is kept
    no_role = api.post("/projects/shop/members", data={"csrf_token": csrf, "user": "tess"})
    assert no_role.status_code == 422
    assert 'id="error-roles">Choose at least one role.<' in no_role.text
    nameless = api.post("/projects/shop/members", headers=ZH, data={
        "csrf_token": csrf, "user": "", "roles": ["tester"]})
    assert nameless.status_code == 422 and 'id="error-user">请输入用户名。<' in nameless.text
    # the last owner keeps the owner role, and cannot be removed
    last = api.post("/projects/shop/members/olga", data={"csrf_token": csrf,
                                                         "roles": ["developer"]})
    assert last.status_code == 422
    assert 'id="error-roles-olga"' in last.text and "no owner left" in last.text
    gone = api.post("/projects/shop/members/olga/remove", data={"csrf_token": csrf})
    assert gone.status_code == 422 and "no owner left" in gone.text
    assert roles_of(world, "olga") == {"owner"}


# -- channels and hosts ----------------------------------------------------------------------


def test_send_test_reaches_the_robot_and_shows_its_answer(api: TestClient,
                                                          world: World) -> None:
    login(api, world, "olga")
    csrf = csrf_of(api.get("/projects/shop").text)
    sent = api.post("/projects/shop/channels/hook/test", data={"csrf_token": csrf},
                    follow_redirects=False)
    shown = flash_after(api, sent)
    assert shown.startswith("ok: Test message sent through hook: the vendor answered 200")
    assert len(world.robot.messages) == 1  # signed and accepted by the robot
    assert world.robot.token not in shown


def test_a_site_admin_checks_a_local_host(api: TestClient, world: World) -> None:
    login(api, world, "root", admin=True)
    page = api.get("/projects/shop")
    assert 'data-action="host.check"' in page.text
    checked = api.post("/projects/shop/hosts/h-prod/check",
                       data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    shown = flash_after(api, checked)
    assert shown.startswith("ok: h-prod answered.") and "MiB free" in shown


def test_an_owner_may_not_check_a_host(api: TestClient, world: World) -> None:
    login(api, world, "olga")
    refused = api.post("/projects/shop/hosts/h-prod/check",
                       data={"csrf_token": csrf_of(api.get("/projects/shop").text)})
    assert refused.status_code == 403 and "needs a site admin" in refused.text


def test_an_ssh_host_is_checked_and_its_key_trusted(api: TestClient, world: World,
                                                    sshd: SshServer) -> None:
    # a document naming only the host turns h-prod into an SSH host, the rest is kept
    apply_config(world.runtime, world.root / "ssh.yaml", {"hosts": [
        {"name": "h-prod", "address": "127.0.0.1", "port": sshd.port,
         "user": sshd.users[0].name, "key": str(sshd.client_key)}]})
    login(api, world, "root", admin=True)
    page = api.get("/projects/shop")
    assert "not pinned yet" in page.text.split('<tr data-name="h-prod">')[1].split("</tr>")[0]
    csrf = csrf_of(page.text)
    trusted = flash_after(api, api.post("/projects/shop/hosts/h-prod/trust",
                                        data={"csrf_token": csrf}, follow_redirects=False))
    with world.runtime.store.session() as session:
        host = session.scalar(select(Host).where(Host.name == "h-prod"))
        assert host is not None and host.host_key
    fingerprint = re.search(r"SHA256:[A-Za-z0-9+/]+", trusted)
    assert fingerprint is not None, trusted
    row = api.get("/projects/shop").text.split('<tr data-name="h-prod">')[1].split("</tr>")[0]
    assert fingerprint.group(0) in row
    checked = flash_after(api, api.post("/projects/shop/hosts/h-prod/check",
                                        data={"csrf_token": csrf}, follow_redirects=False))
    assert checked.startswith("ok: h-prod answered.") and fingerprint.group(0) in checked


# -- golive.yaml -----------------------------------------------------------------------------


def test_export_shows_variables_and_no_secret_value(api: TestClient, world: World) -> None:
    login(api, world, "dev")
    page = api.get("/projects/shop/config")
    assert page.status_code == 200
    assert "${HOOK_URL}" in page.text and "${HOOK_SECRET}" in page.text
    assert HOOK_SECRET not in page.text and world.robot.token not in page.text
    assert 'id="import-needs-admin"' in page.text and 'id="import-config"' not in page.text
    download = api.get("/projects/shop/config/golive.yaml")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "name: shop" in download.text and "${HOOK_SECRET}" in download.text
    assert HOOK_SECRET not in download.text


def _shop_auto_promote(world: World) -> bool:
    with world.runtime.store.session() as session:
        project = session.scalar(select(Project).where(Project.name == "shop"))
        assert project is not None
        return bool(project.auto_promote)


def test_import_with_a_wrong_field_names_the_line_and_changes_nothing(
        api: TestClient, world: World) -> None:
    login(api, world, "root", admin=True)
    page = api.get("/projects/shop/config")
    exported = page.text.split('id="exported-config">')[1].split("</pre>")[0]
    text = exported.replace("&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")
    text = text.replace("  stages:\n", "  auto_promote: true\n  stages:\n", 1)
    text = text.replace("keep_releases: 4", "keep_releasez: 4")
    wrong_line = text.splitlines().index(
        next(line for line in text.splitlines() if "keep_releasez" in line)) + 1
    answer = api.post("/projects/shop/config", data={"csrf_token": csrf_of(page.text),
                                                     "text": text})
    assert answer.status_code == 422
    error = answer.text.split('id="error-text">')[1].split("</p>")[0]
    assert f"shop.golive.yaml:{wrong_line}" in error and "keep_releasez" in error
    assert "unknown field" in error
    assert "keep_releasez: 4" in answer.text  # the text is kept to be fixed
    assert not _shop_auto_promote(world)


def test_an_edited_export_uploaded_as_a_file_is_applied(api: TestClient,
                                                        world: World) -> None:
    """Its ${VAR}s keep their stored values: no secret is typed in, and the channel
    still reaches its robot afterwards."""
    login(api, world, "root", admin=True)
    csrf = csrf_of(api.get("/projects/shop/config").text)
    text = api.get("/projects/shop/config/golive.yaml").text
    text = text.replace("  stages:\n", "  auto_promote: true\n  stages:\n", 1)
    applied = api.post("/projects/shop/config", follow_redirects=False, data={
        "csrf_token": csrf, "text": ""},
        files={"file": ("shop.yaml", text.encode(), "application/yaml")})
    assert "shop.yaml applied: 1 changes" in flash_after(api, applied)
    assert _shop_auto_promote(world)
    assert roles_of(world, "dev") == {"developer"}  # what the file keeps is untouched
    sent = api.post("/projects/shop/channels/hook/test", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert flash_after(api, sent).startswith("ok: ") and len(world.robot.messages) == 1


def test_import_names_this_project_only_and_new_variables_need_values(
        api: TestClient, world: World) -> None:
    login(api, world, "root", admin=True)
    csrf = csrf_of(api.get("/projects/shop/config").text)
    other = api.post("/projects/shop/config", data={
        "csrf_token": csrf, "text": "projects:\n  - name: shop\n  - name: other\n"})
    assert other.status_code == 422
    assert "shop.golive.yaml:3: projects[1].name: this file may change shop only" in other.text
    text = api.get("/projects/shop/config/golive.yaml").text
    text = text.replace("${HOOK_SECRET}", "${NEW_SECRET}")
    unset = api.post("/projects/shop/config", data={"csrf_token": csrf, "text": text,
                                                    "secrets": "# the new one\nNEW_SECRET"})
    assert unset.status_code == 422 and 'id="error-secrets"' in unset.text
    assert "line 2: write NAME=value" in unset.text
    unset = api.post("/projects/shop/config", data={"csrf_token": csrf, "text": text})
    assert unset.status_code == 422
    assert "environment variable NEW_SECRET is not set" in unset.text
    with world.runtime.store.session() as session:
        assert session.scalar(select(Project).where(Project.name == "other")) is None


def test_the_owner_applies_the_project_but_not_what_projects_share(api: TestClient,
                                                                  world: World) -> None:
    login(api, world, "olga")
    page = api.get("/projects/shop/config")
    text = api.get("/projects/shop/config/golive.yaml").text
    assert 'data-action="project.apply"' in page.text
    moved = world.root / "elsewhere"  # a host every project shares, moved by its owner
    shared = f"hosts:\n- {{name: h-prod, transport: local, root: '{moved}'}}\n{text}"
    refused = api.post("/projects/shop/config", data={"csrf_token": csrf_of(page.text),
                                                      "text": shared})
    assert refused.status_code == 403
    assert "host h-prod (updated)" in refused.text and "site admin" in refused.text
    own = text.replace("  stages:\n", "  auto_promote: true\n  stages:\n", 1)
    applied = api.post("/projects/shop/config", follow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "text": own})
    assert applied.status_code == 303, applied.text
    assert _shop_auto_promote(world)
    login(api, world, "dev")
    page = api.get("/projects/shop/config")
    assert 'data-action="project.apply"' not in page.text
    refused = api.post("/projects/shop/config", data={"csrf_token": csrf_of(page.text),
                                                      "text": own})
    assert refused.status_code == 403


# -- languages -------------------------------------------------------------------------------


def test_the_pages_in_chinese(api: TestClient, world: World) -> None:
    login(api, world, "olga")
    page = api.get("/projects/shop", headers=ZH)
    assert "成员" in page.text and "发送测试消息" in page.text and "发布时间窗口" in page.text
    assert "Members" not in page.text
    assert "项目" in api.get("/projects", headers=ZH).text
    config = api.get("/projects/shop/config", headers=ZH)
    assert "下载" in config.text and "Download" not in config.text
    english = api.get("/projects/shop", headers={"Accept-Language": "en"})
    assert "Send a test message" in english.text
