"""``tend hosts``: list, add and remove inventory hosts over the API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tend.cli.client import ApiClient
from tend.cli.output import out, print_json, print_table
from tend.hosts.schemas import Transport
from tend.settings import Settings

hosts_app = typer.Typer(help="Manage the hosts inventory.", no_args_is_help=True)


@hosts_app.command("list")
def list_hosts(
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="only hosts with this tag")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List hosts."""
    params = {"tag": tag} if tag else {}
    with ApiClient.from_settings(Settings()) as api:
        hosts = api.request("GET", "/api/v1/hosts", params=params)
    if as_json:
        print_json(hosts)
    else:
        print_table(hosts, ["name", "transport", "address", "port", "user", "tags"])


@hosts_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="host name (lowercase DNS label)")],
    address: Annotated[
        str | None, typer.Option("--address", "-a", help="IP or DNS name (ssh hosts)")
    ] = None,
    port: Annotated[int, typer.Option("--port", "-p", help="SSH port")] = 22,
    user: Annotated[str | None, typer.Option("--user", "-u", help="SSH login")] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="a tag (repeatable)")
    ] = None,
    transport: Annotated[Transport, typer.Option(help="ssh or local")] = Transport.SSH,
) -> None:
    """Add a host to the inventory (admin)."""
    body: dict[str, Any] = {
        "name": name,
        "port": port,
        "tags": tags or [],
        "transport": transport.value,
    }
    if address is not None:
        body["address"] = address
    if user is not None:
        body["user"] = user
    with ApiClient.from_settings(Settings()) as api:
        host = api.request("POST", "/api/v1/hosts", json=body)
    out.print(f"added host {host['name']} ({host['transport']} {host['address']}:{host['port']})")


@hosts_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="host name")]) -> None:
    """Remove a host from the inventory (admin)."""
    with ApiClient.from_settings(Settings()) as api:
        api.request("DELETE", f"/api/v1/hosts/{name}")
    out.print(f"removed host {name}")
