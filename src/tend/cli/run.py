"""``tend run``: one argv on hosts, streamed with a progress bar, then a per-host table."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tend.cli.client import ApiClient
from tend.cli.errors import CliError
from tend.cli.output import err, out
from tend.settings import Settings

EXIT_PENDING = 3

_STYLE = {"ok": "green", "failed": "red", "timeout": "yellow", "error": "red"}


def results_table(results: list[dict[str, Any]]) -> Table:
    """Render per-host results: status, exit code, duration and the first output line."""
    table = Table(header_style="bold")
    for column in ("host", "status", "exit", "time", "output"):
        table.add_column(column)
    for result in sorted(results, key=lambda r: r["host"]):
        status = result["status"]
        exit_text = (
            str(result["exit_code"]) if result["exit_code"] is not None else result["signal"] or "-"
        )
        text = result["error"] or (result["stdout"] or result["stderr"]).strip()
        first = text.splitlines()[0] if text else ""
        if result.get("stdout_truncated"):
            first += f" [truncated, {result['stdout_bytes']} bytes]"
        table.add_row(
            result["host"],
            f"[{_STYLE.get(status, 'white')}]{status}[/]",
            exit_text,
            f"{result['duration']:.2f}s",
            first,
        )
    return table


def print_pending(pending: dict[str, Any]) -> None:
    """Tell the user a change waits for approval, and how to give it."""
    err.print(
        f"[yellow]approval required[/] ({pending['reason']}) for {', '.join(pending['hosts'])}"
        f"{' — four-eyes: another operator must approve' if pending['four_eyes'] else ''}"
    )
    err.print(f"approve with: tend approvals approve {pending['approval_id']}")
    sys.stdout.write(pending["approval_id"] + "\n")


def run(
    argv: Annotated[list[str], typer.Argument(help="the command, after --", show_default=False)],
    hosts: Annotated[
        list[str] | None, typer.Option("--host", "-H", help="a host name (repeatable)")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="hosts with this tag (repeatable)")
    ] = None,
    all_hosts: Annotated[bool, typer.Option("--all", help="every host")] = False,
    timeout: Annotated[float, typer.Option(help="per-host timeout, seconds")] = 60.0,
    reason: Annotated[str | None, typer.Option(help="why (shown to approvers)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print results as JSON")] = False,
    background: Annotated[
        bool, typer.Option("--async", help="run as a background job and print its id")
    ] = False,
) -> None:
    """Run a command on hosts: reads run now; changes wait for approval (exit 3)."""
    targets = [*(hosts or []), *(f"tag:{t}" for t in tags or [])] + (["all"] if all_hosts else [])
    if not targets:
        msg = "choose hosts: -H NAME, -t TAG or --all"
        raise CliError(msg, exit_code=2)
    body: dict[str, Any] = {"argv": argv, "targets": targets, "timeout": timeout}
    if reason:
        body["reason"] = reason
    if background:
        with ApiClient.from_settings(Settings()) as api:
            accepted = api.request("POST", "/api/v1/runs", json={**body, "async": True})
        if "approval_id" in accepted:
            print_pending(accepted)
            raise typer.Exit(EXIT_PENDING)
        err.print(f"queued; follow it with: tend jobs watch {accepted['job_id']}")
        sys.stdout.write(accepted["job_id"] + "\n")
        return
    results: list[dict[str, Any]] = []
    with (
        ApiClient.from_settings(Settings()) as api,
        api.stream("POST", "/api/v1/runs/stream", json=body) as response,
    ):
        if response.status_code == 202:
            print_pending(json.loads(response.read()))
            raise typer.Exit(EXIT_PENDING)
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json,
        )
        with progress:
            task = progress.add_task(" ".join(argv)[:40], total=None)
            for line in response.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                if event["event"] == "start":
                    progress.update(task, total=len(event["data"]["hosts"]))
                elif event["event"] == "host":
                    results.append(event["data"])
                    progress.advance(task)
    if as_json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        out.print(results_table(results))
    failed = [r["host"] for r in results if r["status"] != "ok"]
    if failed:
        err.print(f"[red]{len(failed)} of {len(results)} host(s) failed:[/] {', '.join(failed)}")
        raise typer.Exit(1)
