"""``tend audit`` and ``tend policy``: verify the chain, list records, judge an argv locally."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer

from tend.auth.models import Role
from tend.cli.client import ApiClient
from tend.cli.errors import CliError
from tend.cli.output import print_json, print_table
from tend.db import Database
from tend.execution.audit import AuditLog, VerifyResult
from tend.execution.build import load_policy
from tend.execution.policy import InvalidArgvError, PolicyRulesError, evaluate
from tend.settings import Settings

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
policy_app = typer.Typer(help="The command policy.", no_args_is_help=True)


async def _verify(settings: Settings) -> VerifyResult:
    database = Database.from_settings(settings)
    try:
        return await AuditLog(database, settings.signing_key()).verify()
    finally:
        await database.dispose()


@audit_app.command("verify")
def verify() -> None:
    """Check the whole chain in the database: exit 0 when intact, 1 naming the first bad record."""
    settings = Settings()
    result = asyncio.run(_verify(settings))
    report = {
        "ok": result.ok,
        "records": result.records,
        "first_bad_id": result.first_bad_id,
        "reason": result.reason,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("list")
def list_records(
    host: Annotated[str | None, typer.Option(help="only this host")] = None,
    user: Annotated[str | None, typer.Option(help="only this user")] = None,
    risk: Annotated[str | None, typer.Option(help="read, change or forbidden")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show recent audit records (operator, over the API)."""
    params = {k: v for k, v in {"host": host, "user": user, "risk": risk}.items() if v}
    with ApiClient.from_settings(Settings()) as api:
        records = api.request("GET", "/api/v1/audit", params={**params, "limit": limit})
    if as_json:
        print_json(records)
        return
    rows = [{**r, "command": " ".join(r["argv"] or [])} for r in records]
    print_table(
        rows, ["id", "created_at", "event", "actor", "host", "risk", "command", "exit_code"]
    )


@policy_app.command("check")
def check(
    argv: Annotated[list[str], typer.Argument(help="the command, after --", show_default=False)],
    tags: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="judge as for a host with this tag")
    ] = None,
    role: Annotated[Role, typer.Option(help="judge as for this role")] = Role.OPERATOR,
) -> None:
    """Print the policy's decision on ARGV as JSON, without running anything."""
    try:
        rules = load_policy(Settings())
        decision = evaluate(argv, role=role.value, host_tags=tags or (), rules=rules)
    except (InvalidArgvError, PolicyRulesError) as exc:
        raise CliError(str(exc)) from exc
    sys.stdout.write(decision.model_dump_json() + "\n")
