"""``tend jobs``: list, show, cancel and watch background jobs over the API."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from tend.cli.client import ApiClient
from tend.cli.output import err, out, print_json, print_table
from tend.cli.run import results_table
from tend.settings import Settings

jobs_app = typer.Typer(help="Background jobs.", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="the job id")]


@jobs_app.command("list")
def list_jobs(
    state: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    kind: Annotated[str | None, typer.Option(help="only this kind")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List jobs, newest first."""
    params = {k: v for k, v in {"state": state, "kind": kind}.items() if v}
    with ApiClient.from_settings(Settings()) as api:
        jobs = api.request("GET", "/api/v1/jobs", params=params)
    if as_json:
        print_json(jobs)
        return
    rows = [{**j, "progress": f"{j['progress'] * 100:.0f}%"} for j in jobs]
    print_table(rows, ["id", "kind", "state", "progress", "requested_by", "created_at", "error"])


@jobs_app.command("show")
def show(job_id: JobId, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a job, with its results when it ran a command."""
    with ApiClient.from_settings(Settings()) as api:
        job = api.request("GET", f"/api/v1/jobs/{job_id}")
    if as_json:
        print_json(job)
        return
    print_table(
        [job],
        ["id", "kind", "state", "attempts", "requested_by", "started_at", "finished_at", "error"],
    )
    results = (job.get("result") or {}).get("results")
    if results:
        out.print(results_table(results))


@jobs_app.command("cancel")
def cancel(job_id: JobId) -> None:
    """Cancel a job; running commands are stopped."""
    with ApiClient.from_settings(Settings()) as api:
        job = api.request("POST", f"/api/v1/jobs/{job_id}/cancel")
    out.print(
        f"job {job['id']} is {job['state']}" + (" (stopping)" if job["state"] == "running" else "")
    )


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    event, data = "message", ""
    for line in lines:
        if not line:
            if data:
                yield event, json.loads(data)
            event, data = "message", ""
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data += line[6:]


@jobs_app.command("watch")
def watch(job_id: JobId) -> None:
    """Follow a job live with a progress bar until it finishes (exit 1 unless it succeeded)."""
    final = "unknown"
    with ApiClient.from_settings(Settings()) as api:
        with (
            api.stream("GET", f"/api/v1/jobs/{job_id}/events") as response,
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=err,
            ) as progress,
        ):
            task = progress.add_task(job_id[:12], total=1.0)
            for event, data in _sse(response.iter_lines()):
                if event == "progress":
                    progress.update(
                        task,
                        completed=data["progress"],
                        description=data.get("message") or job_id[:12],
                    )
                elif event == "host":
                    progress.console.print(f"{data['host']}: {data['status']}")
                elif event == "state":
                    final = data["state"]
        job = api.request("GET", f"/api/v1/jobs/{job_id}")
    results = (job.get("result") or {}).get("results")
    if results:
        out.print(results_table(results))
    sys.stdout.write(f"job {job_id} {final}" + (f": {job['error']}" if job["error"] else "") + "\n")
    if final != "succeeded":
        raise typer.Exit(1)
