"""The assistant's tools: thin, typed adapters over tend's services, acting as the asking user.

Every tool returns a result with a ``status`` (see :mod:`tend.assistant.results`). Every command
a tool runs is an argv that goes through ``ExecutionService.request_run`` with the asking user's
``Caller``: the policy judges it, the audit log records it, a ``read`` runs, a ``change`` becomes
the same pending approval as everywhere else (the tool call is then deferred until a human
decides; see :mod:`tend.assistant.pending`), and a ``forbidden`` command is refused with the
reason. No tool changes the policy, the approvals or the audit log.
"""

from __future__ import annotations

import inspect
from typing import Annotated

from pydantic import Field
from pydantic_ai import ModelRetry, RunContext
from pydantic_ai.toolsets import FunctionToolset

from tend.assistant import commands
from tend.assistant.deps import AssistantDeps
from tend.assistant.observe import diagnostics_of, hosts_of, latest_of, series_of
from tend.assistant.results import (
    CommandResult,
    DiagnosticsResult,
    DiskUsageResult,
    HostsResult,
    MetricsResult,
    SeriesSummaryResult,
)
from tend.assistant.runs import command_result, request, run_argv
from tend.monitoring.registry import METRICS

HostName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="an inventory host name (see list_hosts)",
    ),
]
Target = Annotated[
    str, Field(min_length=1, max_length=70, description="a host name, 'tag:NAME' or 'all'")
]
Argv = Annotated[
    list[Annotated[str, Field(max_length=4096)]],
    Field(min_length=1, max_length=256, description="the command as an argv list, never a string"),
]
AbsolutePath = Annotated[str, Field(min_length=1, max_length=4096)]
MAX_TARGETS = 50


async def list_hosts(ctx: RunContext[AssistantDeps], tag: str | None = None) -> HostsResult:
    """List the inventory's hosts with their tags and whether the monitor reaches them.

    Args:
        ctx: The run's context (the asking user, tend's services).
        tag: Only hosts carrying this tag.
    """
    return await hosts_of(ctx.deps, tag)


async def latest_metrics(
    ctx: RunContext[AssistantDeps], host: HostName, names: list[str] | None = None
) -> MetricsResult:
    """Return a host's newest metric values (CPU, memory, load, filesystems, network...).

    Args:
        ctx: The run's context (the asking user, tend's services).
        host: The host.
        names: Only metrics whose name starts with one of these (e.g. ``filesystem_``).
    """
    return await latest_of(ctx.deps, host, names)


async def series_summary(
    ctx: RunContext[AssistantDeps],
    host: HostName,
    metric: str,
    labels: list[str] | None = None,
    since_minutes: Annotated[int, Field(ge=1, le=90 * 24 * 60)] = 60,
) -> SeriesSummaryResult:
    """Summarise a metric of a host over the last minutes: min/avg/max/last and the trend.

    Args:
        ctx: The run's context (the asking user, tend's services).
        host: The host.
        metric: A metric name, e.g. ``cpu_usage_percent`` or ``filesystem_used_percent``.
        labels: Only series with these labels, as ``KEY=VALUE`` (e.g. ``mount=/var``).
        since_minutes: How far back, in minutes.
    """
    return await series_of(ctx.deps, host, metric, labels or [], since_minutes)


async def run_diagnostics(
    ctx: RunContext[AssistantDeps], host: HostName, analyzers: list[str] | None = None
) -> DiagnosticsResult:
    """Run tend's deterministic analyzers on a host: findings with evidence, most severe first.

    Analyzers: disk, memory, failed_units, load, zombies, swap, clock, updates, ssh_bruteforce,
    listening_ports, certificates. Their commands are read-only and audited.

    Args:
        ctx: The run's context (the asking user, tend's services).
        host: The host.
        analyzers: Analyzer ids (default: all).
    """
    return await diagnostics_of(ctx.deps, host, analyzers)


async def run_command(
    ctx: RunContext[AssistantDeps],
    hosts: Annotated[list[Target], Field(min_length=1, max_length=MAX_TARGETS)],
    argv: Argv,
    reason: Annotated[str | None, Field(max_length=500)] = None,
) -> CommandResult:
    """Run a command on hosts through tend's policy, as the user who asked.

    A read-only command runs at once. A command that changes something becomes a request for a
    human's approval: you get its ``approval_id`` and must not claim it ran. A forbidden command
    is refused with the policy's reason. Never use a shell string: give argv.

    Args:
        ctx: The run's context (the asking user, tend's services).
        hosts: Host names, ``tag:NAME`` or ``all``.
        argv: The command, e.g. ``["ss", "-tlnp"]``.
        reason: Why you need it (shown to whoever approves a change).
    """
    return await run_argv(ctx.deps, list(argv), list(hosts), reason=reason)


async def read_logs(
    ctx: RunContext[AssistantDeps],
    host: HostName,
    *,
    unit: Annotated[str | None, Field(max_length=256)] = None,
    priority: commands.Priority | None = None,
    since: Annotated[str | None, Field(max_length=64)] = None,
    lines: Annotated[int, Field(ge=1, le=5000)] = 200,
    file: AbsolutePath | None = None,
    max_bytes: Annotated[int, Field(ge=256, le=1024 * 1024)] = 64 * 1024,
) -> CommandResult:
    """Read logs: the systemd journal (by unit, priority, since), or the end of a log file.

    Args:
        ctx: The run's context (the asking user, tend's services).
        host: The host.
        unit: A systemd unit, e.g. ``nginx.service`` (journal only).
        priority: Least severe priority shown: emerg, alert, crit, err, warning, notice, info,
            debug (journal only).
        since: Start, e.g. ``-1h``, ``today``, ``2026-11-26 10:00`` (journal only).
        lines: Most journal entries, newest last.
        file: Instead of the journal, read the end of this file (absolute path).
        max_bytes: With ``file``: how many bytes from its end.
    """
    try:
        if file is not None:
            argv = commands.tail_argv(file, max_bytes)
        else:
            argv = commands.journal_argv(unit=unit, priority=priority, since=since, lines=lines)
    except commands.BadArgument as exc:
        raise ModelRetry(str(exc)) from exc
    result = await run_argv(ctx.deps, argv, [host], reason="read logs")
    return _no_data_when_empty(result, "no log lines matched")


async def processes(
    ctx: RunContext[AssistantDeps],
    host: HostName,
    sort: commands.ProcessSort = "cpu",
    limit: Annotated[int, Field(ge=1, le=500)] = 30,
) -> CommandResult:
    """List a host's processes, busiest first (pid, ppid, user, state, %cpu, %mem, rss, args).

    Args:
        ctx: The run's context (the asking user, tend's services).
        host: The host.
        sort: ``cpu`` or ``memory``.
        limit: How many processes to show.
    """
    argv = commands.ps_argv(sort)
    outcome = await request(ctx.deps, argv, [host], reason="list processes")
    if isinstance(outcome, CommandResult):
        return outcome
    for each in outcome.results:
        each.stdout = commands.first_lines(each.stdout, limit + 1)
    return await command_result(ctx.deps, argv, outcome)


async def service_status(
    ctx: RunContext[AssistantDeps],
    host: HostName,
    unit: Annotated[str, Field(min_length=1, max_length=256)],
) -> CommandResult:
    """Show a systemd unit's state and its last log lines (``systemctl status``).

    Args:
        ctx: The run's context (the asking user, tend's services).
        host: The host.
        unit: The unit, e.g. ``nginx`` or ``postgresql.service``.
    """
    try:
        argv = commands.status_argv(unit)
    except commands.BadArgument as exc:
        raise ModelRetry(str(exc)) from exc
    return await run_argv(ctx.deps, argv, [host], reason="service status")


async def disk_usage(
    ctx: RunContext[AssistantDeps], host: HostName, path: AbsolutePath = "/"
) -> DiskUsageResult:
    """Show the filesystem holding a path and the largest directories directly below it.

    Args:
        ctx: The run's context (the asking user, tend's services).
        host: The host.
        path: An absolute path, e.g. ``/var``.
    """
    try:
        argvs = (commands.df_argv(path), commands.du_argv(path))
    except commands.BadArgument as exc:
        raise ModelRetry(str(exc)) from exc
    outputs: list[str] = []
    for argv in argvs:
        outcome = await request(ctx.deps, argv, [host], reason="disk usage")
        if isinstance(outcome, CommandResult):
            return DiskUsageResult(
                status=outcome.status, host=host, path=path, message=outcome.message
            )
        outputs.append("".join(r.stdout for r in outcome.results))
    filesystem = commands.parse_df(outputs[0])
    largest = commands.parse_du(outputs[1])
    found = filesystem is not None or bool(largest)
    return DiskUsageResult(
        status="success" if found else "no_data",
        message=None if found else f"df and du printed nothing usable for {path}",
        host=host,
        path=path,
        filesystem=filesystem,
        largest=largest,
    )


def _no_data_when_empty(result: CommandResult, message: str) -> CommandResult:
    empty = all(h.stdout is None or not h.stdout.text.strip() for h in result.hosts)
    if result.status == "success" and empty:
        result.status = "no_data"
        result.message = message
    return result


TOOLS = (
    list_hosts,
    latest_metrics,
    series_summary,
    run_diagnostics,
    run_command,
    read_logs,
    processes,
    service_status,
    disk_usage,
)


def assistant_toolset(*, max_retries: int = 2) -> FunctionToolset[AssistantDeps]:
    """Build the toolset the agent uses: every tool above, documented from its docstring.

    The metric tools also name every metric of the registry, so the model asks for real ones.

    Args:
        max_retries: How many times the model may fix malformed arguments of one tool.

    Returns:
        The toolset.
    """
    toolset: FunctionToolset[AssistantDeps] = FunctionToolset(
        max_retries=max_retries, docstring_format="google", require_parameter_descriptions=True
    )
    for tool in TOOLS:
        description = None
        if tool is series_summary:
            description = f"{_summary_line(tool)} Metrics: {', '.join(METRICS)}."
        toolset.add_function(tool, description=description)
    return toolset


def _summary_line(tool: object) -> str:
    doc = inspect.getdoc(tool) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ")
