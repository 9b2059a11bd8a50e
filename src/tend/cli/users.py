"""``tend users``: create works on the database directly; the rest go through the API."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from tend.auth.models import Role
from tend.auth.schemas import UserCreate
from tend.auth.security import Passwords
from tend.auth.service import create_user
from tend.cli.client import ApiClient
from tend.cli.errors import CliError
from tend.cli.output import err, out, print_json, print_table
from tend.cli.server import run_upgrade
from tend.db import Database
from tend.errors import Conflict
from tend.settings import Settings

users_app = typer.Typer(help="Manage users.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def read_password(prompt: str = "Password") -> str:
    """Read a password: the first line of stdin when it is not a terminal, else prompt twice.

    Args:
        prompt: The prompt text.

    Returns:
        The password.

    Raises:
        CliError: When stdin is empty.
    """
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            msg = "no password on standard input"
            raise CliError(msg)
        return line
    password: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return password


def validation_message(exc: ValidationError) -> str:
    """Summarise a pydantic validation error in one line."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


async def _create(settings: Settings, data: UserCreate) -> None:
    database = Database.from_settings(settings)
    passwords = Passwords(
        time_cost=settings.password_hash_time_cost, memory_cost=settings.password_hash_memory_kib
    )
    try:
        async with database.session() as session:
            await create_user(
                session, passwords, username=data.username, password=data.password, role=data.role
            )
    finally:
        await database.dispose()


@users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="username")],
    role: Annotated[Role, typer.Option(help="viewer, operator or admin")] = Role.VIEWER,
) -> None:
    """Create a user in the database (password from stdin, or prompted twice on a terminal)."""
    password = read_password()
    try:
        data = UserCreate(username=name, password=password, role=role)
    except ValidationError as exc:
        raise CliError(f"invalid user: {validation_message(exc)}") from exc
    settings = Settings()
    run_upgrade(settings)
    try:
        asyncio.run(_create(settings, data))
    except Conflict as exc:
        raise CliError(str(exc.detail)) from exc
    err.print(f"created user {data.username} with role {data.role.value}")


@users_app.command("list")
def list_users(as_json: JsonOption = False) -> None:
    """List users (admin, over the API)."""
    with ApiClient.from_settings(Settings()) as api:
        users = api.request("GET", "/api/v1/users")
    if as_json:
        print_json(users)
    else:
        print_table(users, ["username", "role", "disabled", "created_at"])


def _set_disabled(name: str, disabled: bool) -> None:
    with ApiClient.from_settings(Settings()) as api:
        user = api.request("PATCH", f"/api/v1/users/{name}", json={"disabled": disabled})
    out.print(f"user {user['username']} is {'disabled' if user['disabled'] else 'enabled'}")


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="username")]) -> None:
    """Disable a user: their tokens stop working at once (admin, over the API)."""
    _set_disabled(name, True)


@users_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="username")]) -> None:
    """Enable a disabled user again (admin, over the API)."""
    _set_disabled(name, False)


@users_app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="username")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
) -> None:
    """Delete a user and their API tokens (admin, over the API)."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Delete user {name} and all their API tokens?", abort=True)
    with ApiClient.from_settings(Settings()) as api:
        api.request("DELETE", f"/api/v1/users/{name}")
    out.print(f"deleted user {name}")
