"""Read-only tools over inventory, monitoring and diagnostics, as results with a status.

These adapters call the same service functions the HTTP API calls (hosts listing, latest values,
series, diagnose) and reshape the answer for a model: a series becomes min/avg/max/last and a
trend instead of raw points; diagnostics keep findings and evidence, not probe outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from tend.assistant.deps import AssistantDeps
from tend.assistant.results import (
    DiagnosticFinding,
    DiagnosticsResult,
    HostInfo,
    HostsResult,
    MetricReading,
    MetricsResult,
    SeriesStats,
    SeriesSummaryResult,
    StepProposal,
)
from tend.diagnostics.findings import Severity
from tend.errors import TendError
from tend.hosts.service import list_hosts
from tend.monitoring import service as monitoring_service
from tend.monitoring.schemas import SeriesData

FLAT_WITHIN = 0.1
"""A series whose last third differs from its first third by less than this share is flat."""


async def hosts_of(deps: AssistantDeps, tag: str | None) -> HostsResult:
    """List the inventory with each host's monitoring state."""
    async with deps.database.session() as session:
        hosts = await list_hosts(session, tag=tag)
    if not hosts:
        where = f" with tag {tag!r}" if tag else ""
        return HostsResult(status="no_data", message=f"no hosts{where} in the inventory")
    states = await deps.monitoring.host_states()
    infos = []
    for host in hosts:
        state = states.get(host.name)
        infos.append(
            HostInfo(
                name=host.name,
                address=host.address,
                transport=host.transport,
                tags=list(host.tags),
                state=state.state if state else "unknown",
                since=state.since if state else None,
                last_error=state.last_error if state else None,
            )
        )
    return HostsResult(status="success", hosts=infos)


async def latest_of(deps: AssistantDeps, host: str, names: Sequence[str] | None) -> MetricsResult:
    """Return a host's newest values, optionally only metrics with the given name prefixes."""
    try:
        async with deps.database.session() as session:
            found = await monitoring_service.host_metrics(deps.monitoring, session, host)
    except TendError as exc:
        return MetricsResult(status="error", host=host, message=str(exc.detail))
    readings = [
        MetricReading(name=m.name, value=m.value, unit=m.unit, labels=m.labels)
        for m in found.metrics
        if not names or any(m.name.startswith(prefix) for prefix in names)
    ]
    if not readings:
        why = (
            "no metric matches those names"
            if found.metrics
            else "no values collected yet (the monitor has not reached this host)"
        )
        return MetricsResult(status="no_data", host=host, state=found.state, message=why)
    return MetricsResult(
        status="success",
        host=host,
        state=found.state,
        collected_at=found.collected_at,
        metrics=readings,
        info=found.info,
    )


def _trend(values: Sequence[float]) -> Literal["rising", "falling", "flat"]:
    if len(values) < 2:
        return "flat"
    third = max(1, len(values) // 3)
    head = sum(values[:third]) / third
    tail = sum(values[-third:]) / third
    scale = max(abs(sum(values) / len(values)), max(values) - min(values), 1e-9)
    delta = (tail - head) / scale
    if abs(delta) < FLAT_WITHIN:
        return "flat"
    return "rising" if delta > 0 else "falling"


def summarise(series: SeriesData) -> SeriesStats:
    """Reduce one label set's points (``[ts, avg, max, min]``) to statistics and a trend."""
    averages = [point[1] for point in series.points]
    return SeriesStats(
        labels=series.labels,
        points=len(series.points),
        min=min(point[3] for point in series.points),
        avg=sum(averages) / len(averages),
        max=max(point[2] for point in series.points),
        first=averages[0],
        last=averages[-1],
        trend=_trend(averages),
        change=averages[-1] - averages[0],
    )


async def series_of(
    deps: AssistantDeps, host: str, metric: str, labels: Sequence[str], minutes: int
) -> SeriesSummaryResult:
    """Summarise a metric of a host over the last ``minutes``."""
    start = deps.monitoring.clock.now() - timedelta(minutes=minutes)
    try:
        async with deps.database.session() as session:
            found = await monitoring_service.series(
                deps.monitoring,
                session,
                host,
                metric=metric,
                start=start,
                end=None,
                step=None,
                labels=labels,
            )
    except TendError as exc:
        return SeriesSummaryResult(status="error", host=host, metric=metric, message=_text(exc))
    stats = [summarise(s) for s in found.series if s.points]
    return SeriesSummaryResult(
        status="success" if stats else "no_data",
        message=None if stats else f"no samples of {metric} in the last {minutes} minutes",
        host=host,
        metric=metric,
        unit=found.unit,
        start=found.start,
        end=found.end,
        step=found.step,
        series=stats,
    )


async def diagnostics_of(
    deps: AssistantDeps, host: str, analyzers: Sequence[str] | None
) -> DiagnosticsResult:
    """Run the analyzers on a host as the asking user; keep findings and evidence."""
    try:
        report = await deps.diagnose(deps.execution, host, deps.caller, analyzers)
    except TendError as exc:
        return DiagnosticsResult(status="error", host=host, message=_text(exc))
    findings = [
        DiagnosticFinding(
            analyzer=f.analyzer,
            severity=f.severity,
            title=f.title,
            evidence=f.evidence,
            likely_cause=f.likely_cause,
            next_steps=[
                StepProposal(argv=s.argv, purpose=s.purpose, risk=s.risk) for s in f.next_steps
            ],
        )
        for f in report.findings
        if f.severity is not Severity.OK
    ]
    not_run = [
        f"{' '.join(p.argv)}: {p.status}{': ' + p.error if p.error else ''}"
        for p in report.probes
        if p.status in ("refused", "error", "timeout")
    ]
    return DiagnosticsResult(
        status="success" if findings else "no_data",
        message=None if findings else "every analyzer found the host healthy",
        host=host,
        worst=report.status,
        run_id=report.run_id,
        findings=findings,
        probes_not_run=not_run,
    )


def _text(exc: TendError) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {value}" for key, value in detail.items())
    return str(detail)
