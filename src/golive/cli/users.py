"""`golive user ...` and `golive member ...`"""

from __future__ import annotations

import typer

from golive.cli import output, views
from golive.cli.context import unit_of_work
from golive.services import users as user_service

users = typer.Typer(help="Manage users (site admins).", no_args_is_help=True)
members = typer.Typer(help="Give users roles in projects.", no_args_is_help=True)


@users.command("add")
def add(
    name: str = typer.Argument(..., help="Login name."),
    admin: bool = typer.Option(False, "--admin", help="Make the user a site admin."),
    email: str = typer.Option("", "--email"),
    mobile: str = typer.Option("", "--mobile", help="Mobile number, for chat @-mentions."),
    display_name: str = typer.Option("", "--display-name"),
    language: str = typer.Option("en", "--language", help="en or zh_CN."),
) -> None:
    """Add a user."""
    with unit_of_work() as work:
        user_service.add_user(work.session, work.user, name, admin=admin, email=email,
                              mobile=mobile, display_name=display_name, language=language)
    output.console.print(f"user {name} added", markup=False)


@users.command("set")
def set_profile(
    name: str = typer.Argument(..., help="The user (yourself, or anyone for a site admin)."),
    email: str | None = typer.Option(None, "--email"),
    mobile: str | None = typer.Option(None, "--mobile", help="For WeCom / DingTalk mentions."),
    wecom_id: str | None = typer.Option(None, "--wecom-id", help="WeCom userid."),
    dingtalk_id: str | None = typer.Option(None, "--dingtalk-id", help="DingTalk userId."),
    feishu_id: str | None = typer.Option(None, "--feishu-id", help="Feishu open_id."),
    display_name: str | None = typer.Option(None, "--display-name"),
    language: str | None = typer.Option(None, "--language", help="en or zh_CN."),
) -> None:
    """Change a user's profile: the mobile, chat ids and e-mail notifications mention."""
    given = {"email": email, "mobile": mobile, "wecom_id": wecom_id,
             "dingtalk_id": dingtalk_id, "feishu_id": feishu_id,
             "display_name": display_name, "language": language}
    changes = {k: v for k, v in given.items() if v is not None}
    with unit_of_work() as work:
        user_service.update_profile(work.session, work.user, name, changes)
    output.console.print(f"user {name}: {', '.join(sorted(changes)) or 'nothing'} changed",
                         markup=False)


@users.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List users."""
    with unit_of_work() as work:
        rows = [views.user_view(u) for u in user_service.list_users(work.session)]
    if as_json:
        output.print_json(rows)
        return
    output.table("users", ["name", "display name", "email", "mobile", "admin"], [
        [r["name"], r["display_name"], r["email"], r["mobile"], "yes" if r["is_admin"] else ""]
        for r in rows])


@members.command("add")
def member_add(
    user: str = typer.Argument(..., help="The user."),
    project: str = typer.Option(..., "-p", "--project", help="The project."),
    role: list[str] = typer.Option(..., "--role", "-r",
                                   help="owner, developer, tester or releaser; repeatable."),
) -> None:
    """Give a user one or more roles in a project (project owner or site admin)."""
    with unit_of_work() as work:
        for one in role:
            user_service.add_member(work.session, work.user, project, user, one)
    output.console.print(f"{user} is {', '.join(role)} in {project}", markup=False)
