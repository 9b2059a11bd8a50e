"""``tend approvals``: list, approve and deny change requests over the API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tend.cli.client import ApiClient
from tend.cli.output import out, print_json, print_table
from tend.cli.run import results_table
from tend.settings import Settings

approvals_app = typer.Typer(help="Review change requests.", no_args_is_help=True)

NoteOption = Annotated[str | None, typer.Option("--note", help="a note for the audit log")]


@approvals_app.command("list")
def list_approvals(
    status: Annotated[
        str | None, typer.Option(help="pending, approved, denied, expired or executed")
    ] = "pending",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List approvals (pending ones by default)."""
    params = {"status": status} if status and status != "all" else {}
    with ApiClient.from_settings(Settings()) as api:
        items = api.request("GET", "/api/v1/approvals", params=params)
    if as_json:
        print_json(items)
        return
    rows = [{**a, "command": " ".join(a["argv"]), "hosts": a["hosts"]} for a in items]
    print_table(rows, ["id", "status", "requester", "command", "hosts", "four_eyes", "expires_at"])


def _decide(approval_id: str, action: str, note: str | None) -> dict[str, Any]:
    with ApiClient.from_settings(Settings()) as api:
        body = {"note": note} if note else None
        outcome: dict[str, Any] = api.request(
            "POST", f"/api/v1/approvals/{approval_id}/{action}", json=body
        )
        return outcome


@approvals_app.command("approve")
def approve(
    approval_id: Annotated[str, typer.Argument(help="the approval id")], note: NoteOption = None
) -> None:
    """Approve a change; it runs now and the results are shown (exit 1 if a host failed)."""
    outcome = _decide(approval_id, "approve", note)
    run = outcome.get("run")
    if run is None:
        out.print(f"approved, but not run: {outcome['approval']['decision_note']}")
        raise typer.Exit(1)
    out.print(results_table(run["results"]))
    if not run["ok"]:
        raise typer.Exit(1)


@approvals_app.command("deny")
def deny(
    approval_id: Annotated[str, typer.Argument(help="the approval id")], note: NoteOption = None
) -> None:
    """Deny a change request."""
    outcome = _decide(approval_id, "deny", note)
    out.print(f"denied {outcome['approval']['id']}")
