"""``tend tokens``: create, list and revoke API tokens over the API."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from tend.auth.models import Role
from tend.cli.client import ApiClient
from tend.cli.errors import CliError
from tend.cli.output import err, out, print_json, print_table
from tend.settings import Settings

tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def _login_password() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            msg = "no password on standard input"
            raise CliError(msg)
        return line
    password: str = typer.prompt("Password", hide_input=True)
    return password


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="a label for the token")],
    expires_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="expire after this many days")
    ] = None,
    role: Annotated[Role | None, typer.Option(help="narrow the token to this role")] = None,
    username: Annotated[
        str | None,
        typer.Option(
            "--username", "-u", help="sign in with this user's password instead of TEND_TOKEN"
        ),
    ] = None,
) -> None:
    """Create an API token; it is printed once on stdout (details go to stderr)."""
    settings = Settings()
    token = None if username else (settings.token.get_secret_value() if settings.token else None)
    with ApiClient(settings.url, token, require_token=username is None) as api:
        if username:
            api.login(username, _login_password())
        body: dict[str, Any] = {"name": name}
        if expires_days is not None:
            body["expires_in_days"] = expires_days
        if role is not None:
            body["role"] = role.value
        created = api.request("POST", "/api/v1/tokens", json=body)
    expiry = created["expires_at"] or "never"
    err.print(
        f"created API token {created['name']!r} (id {created['id']}, expires {expiry}); "
        "it is shown only now:"
    )
    sys.stdout.write(created["token"] + "\n")


@tokens_app.command("list")
def list_tokens(
    all_users: Annotated[bool, typer.Option("--all", help="every user's tokens (admin)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List API tokens (never their secrets)."""
    with ApiClient.from_settings(Settings()) as api:
        tokens = api.request("GET", "/api/v1/tokens", params={"all": all_users})
    if as_json:
        print_json(tokens)
    else:
        columns = ["id", "name", "username", "prefix", "role", "expires_at", "revoked_at"]
        print_table(tokens, [*columns, "last_used_at"])


@tokens_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="the token's id")]) -> None:
    """Revoke an API token; it stops working at once."""
    with ApiClient.from_settings(Settings()) as api:
        token = api.request("DELETE", f"/api/v1/tokens/{token_id}")
    out.print(f"revoked API token {token['id']} ({token['name']})")
