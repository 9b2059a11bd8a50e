"""``tend check``: diagnose hosts and show each finding with its evidence.

Exit status follows the monitoring-plugin convention: 0 healthy, 1 warnings, 2 critical, and
3 when a host could not be checked at all (unknown host, server unreachable).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table

from tend.cli.client import ApiClient
from tend.cli.errors import CliError
from tend.cli.output import err, out, print_json
from tend.settings import Settings

EXIT = {"ok": 0, "info": 0, "warning": 1, "critical": 2}
EXIT_UNKNOWN = 3
_STYLE = {"ok": "green", "info": "blue", "warning": "yellow", "critical": "bold red"}
_RISK = {"read": "green", "change": "yellow", "forbidden": "red"}
_TIMEOUT = httpx.Timeout(None, connect=5.0)  # a diagnosis takes as long as its slowest round
_PARALLEL = 4


def _hosts(api: ApiClient, host: str | None, tags: list[str]) -> list[str]:
    if host is not None:
        return [host]
    if not tags:
        return [h["name"] for h in api.request("GET", "/api/v1/hosts", params={"limit": 5000})]
    names: set[str] = set()
    for tag in tags:
        found = api.request("GET", "/api/v1/hosts", params={"tag": tag, "limit": 5000})
        if not found:
            msg = f"no host carries tag {tag!r}"
            raise CliError(msg, exit_code=EXIT_UNKNOWN)
        names.update(h["name"] for h in found)
    return sorted(names)


def _finding_cell(item: dict[str, Any]) -> str:
    lines = [f"[bold]{escape(item['title'])}[/]"]
    if item["severity"] == "ok":
        return lines[0]
    lines += [f"  {escape(line)}" for line in item["evidence"]]
    if item.get("likely_cause"):
        lines.append(f"[italic]likely cause:[/] {escape(item['likely_cause'])}")
    for step in item["next_steps"]:
        risk = step.get("risk") or "?"
        command = escape(" ".join(step["argv"]))
        lines.append(
            f"[dim]next:[/] {command}  [{_RISK.get(risk, 'white')}]\\[{risk}][/] "
            f"[dim]{escape(step['purpose'])}[/]"
        )
    return "\n".join(lines)


def render(report: dict[str, Any]) -> None:
    """Print one host's section: a header with its status, then a table of findings."""
    status = report["status"]
    counts = ", ".join(f"{n} {s}" for s, n in report["counts"].items() if n)
    out.print(
        Rule(
            f"[bold]{escape(report['host'])}[/]: [{_STYLE[status]}]{status.upper()}[/]"
            f" — {counts} ({report['duration']:.1f} s)",
            align="left",
        )
    )
    table = Table(header_style="bold", show_lines=True, expand=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("analyzer", no_wrap=True)
    table.add_column("finding")
    for item in report["findings"]:
        severity = item["severity"]
        table.add_row(
            f"[{_STYLE[severity]}]{severity}[/]", escape(item["analyzer"]), _finding_cell(item)
        )
    out.print(table)


def _diagnoser(api: ApiClient, body: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    def one(name: str) -> dict[str, Any]:
        try:
            report: dict[str, Any] = api.request(
                "POST", f"/api/v1/hosts/{name}/diagnose", json=body, timeout=_TIMEOUT
            )
        except CliError as exc:
            return {"host": name, "error": exc.message}
        return report

    return one


def check(
    host: Annotated[str | None, typer.Argument(help="a host (default: every host)")] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="hosts with this tag (repeatable)")
    ] = None,
    analyzers: Annotated[
        list[str] | None,
        typer.Option("--analyzer", "-a", help="only this analyzer (repeatable; default: all)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the reports as JSON")] = False,
) -> None:
    """Diagnose hosts: exit 0 healthy, 1 warnings, 2 critical, 3 when a host was not checked."""
    if host is not None and tags:
        msg = "give a HOST or --tag, not both"
        raise CliError(msg, exit_code=2)
    body: dict[str, Any] = {"analyzers": analyzers} if analyzers else {}
    try:
        with ApiClient.from_settings(Settings()) as api:
            names = _hosts(api, host, tags or [])
            with ThreadPoolExecutor(max_workers=min(_PARALLEL, max(1, len(names)))) as pool:
                reports = list(pool.map(_diagnoser(api, body), names))
    except CliError as exc:
        raise CliError(exc.message, exit_code=EXIT_UNKNOWN) from exc
    if host is not None and "error" in reports[0]:
        raise CliError(reports[0]["error"], exit_code=EXIT_UNKNOWN)
    if as_json:
        print_json(reports[0] if host is not None else reports)
    else:
        for report in reports:
            if "error" in report:
                err.print(f"[bold red]{escape(report['host'])}: not checked:[/] {report['error']}")
            else:
                render(report)
    codes = [EXIT_UNKNOWN if "error" in r else EXIT[r["status"]] for r in reports]
    code = max(codes, default=0)
    if code:
        raise typer.Exit(code)
