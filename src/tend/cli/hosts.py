"""``tend hosts``: list, add and remove inventory hosts over the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tend.cli.client import ApiClient
from tend.cli.errors import CliError
from tend.cli.output import err, out, print_json, print_table
from tend.hosts.importers import InventoryError, InventoryFormat, parse_inventory
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


@hosts_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="Ansible inventory (INI/YAML) or ssh_config")],
    fmt: Annotated[InventoryFormat | None, typer.Option("--format", help="skip detection")] = None,
    on_conflict: Annotated[
        str, typer.Option(help="skip, update or error when a host name exists")
    ] = "skip",
    trust_on_first_use: Annotated[
        bool, typer.Option(help="pin each host's key on its first connection")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="show what would be imported")] = False,
) -> None:
    """Import hosts from an Ansible inventory or an OpenSSH client config (admin)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text") from exc
    try:
        inventory = parse_inventory(
            text, fmt=fmt, filename=str(path), trust_on_first_use=trust_on_first_use
        )
    except InventoryError as exc:
        raise CliError(str(exc)) from exc
    for warning in inventory.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    hosts = [h.model_dump(mode="json", exclude_defaults=True) for h in inventory.hosts]
    if dry_run or not hosts:
        print_table(hosts, ["name", "address", "port", "user", "tags", "proxy_jump", "key_file"])
        out.print(f"{len(hosts)} host(s) parsed; nothing imported")
        return
    with ApiClient.from_settings(Settings()) as api:
        result = api.request(
            "POST", "/api/v1/hosts/import", json={"hosts": hosts, "on_conflict": on_conflict}
        )
    out.print(
        f"imported {len(result['created'])} new, updated {len(result['updated'])}, "
        f"skipped {len(result['skipped'])} existing"
        + (f": {', '.join(result['skipped'])}" if result["skipped"] else "")
    )
