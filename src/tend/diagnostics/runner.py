"""Diagnose a host: gather what the analyzers need in few round trips, then let each judge.

Round trips: the clock probe first (it also tells whether the host answers, and warms up the
SSH connection), then every analyzer's probes at once, then the follow-ups some analyzers ask
for after seeing the first outputs (``du`` on a full mount, logs of failed units, certificate
files). Each command goes through the execution path: judged, audited, run.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial

from tend.db import utcnow
from tend.diagnostics import probes as shared
from tend.diagnostics.analyzers import ANALYZERS
from tend.diagnostics.baselines import load_baselines, save_baselines
from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import (
    AnalyzerSpec,
    Finding,
    Observations,
    Probe,
    ProbeOutput,
    Severity,
    finding,
    worst,
)
from tend.diagnostics.gather import gather, unreachable
from tend.diagnostics.schemas import DiagnosisReport, ProbeRun
from tend.errors import ValidationFailed
from tend.execution.policy import InvalidArgvError, Risk
from tend.execution.service import Caller, ExecutionService
from tend.execution.targets import HostSnapshot, resolve_targets

logger = logging.getLogger("tend.diagnostics")

Progress = Callable[[float, str], Awaitable[None]]
CONNECTION = "connection"
CONCURRENCY = 6


def select_analyzers(ids: Sequence[str] | None) -> list[AnalyzerSpec]:
    """The analyzers to run, in registry order.

    Raises:
        ValidationFailed: For an unknown id (422, naming the valid ones).
    """
    if ids is None:
        return list(ANALYZERS.values())
    unknown = sorted(set(ids) - set(ANALYZERS))
    if unknown:
        raise ValidationFailed(
            f"unknown analyzer(s): {', '.join(unknown)}; valid: {', '.join(ANALYZERS)}"
        )
    return [spec for spec in ANALYZERS.values() if spec.id in set(ids)]


async def _resolve(execution: ExecutionService, host: str | HostSnapshot) -> HostSnapshot:
    if isinstance(host, HostSnapshot):
        return host
    async with execution.database.session() as session:
        return (await resolve_targets(session, [host]))[0]


def _safely(spec: AnalyzerSpec, obs: Observations) -> list[Finding]:
    """Run one analyzer; a bug in one analyzer becomes an info finding, not a failure."""
    try:
        return spec.analyze(obs)
    except Exception as exc:  # one analyzer's bug must not stop the others
        logger.exception("analyzer %s failed", spec.id)
        return [
            finding(
                spec.id,
                Severity.INFO,
                f"analyzer {spec.id} failed: {type(exc).__name__}",
                [str(exc)[:300]],
            )
        ]


def _plan(spec: AnalyzerSpec, plan: Callable[[], Sequence[Probe]]) -> list[Probe]:
    """An analyzer's probes; one that cannot plan them gets none and says so when it analyzes."""
    try:
        return list(plan())
    except Exception:  # a bug in one analyzer's planning must not stop the others
        logger.exception("analyzer %s could not plan its probes", spec.id)
        return []


def _judge_steps(
    execution: ExecutionService, caller: Caller, host: HostSnapshot, findings: list[Finding]
) -> None:
    for item in findings:
        for step in item.next_steps:
            try:
                decision = execution.judge(step.argv, caller.role, [host]).decision
                step.risk, step.reason = decision.risk, decision.reason
            except InvalidArgvError as exc:
                step.risk, step.reason = Risk.FORBIDDEN, str(exc)


def _report(
    host: HostSnapshot,
    *,
    started: datetime,
    clock: float,
    run_id: str,
    specs: list[AnalyzerSpec],
    findings: list[Finding],
    outputs: dict[str, ProbeOutput],
) -> DiagnosisReport:
    order = {spec.id: index for index, spec in enumerate(specs)}
    findings.sort(key=lambda f: (-f.severity.rank, order.get(f.analyzer, -1)))
    counts = dict.fromkeys(Severity, 0)
    for item in findings:
        counts[item.severity] += 1
    return DiagnosisReport(
        host=host.name,
        status=worst([f.severity for f in findings]),
        counts=counts,
        started_at=started,
        duration=round(time.monotonic() - clock, 3),
        run_id=run_id,
        analyzers=[spec.id for spec in specs],
        findings=findings,
        probes=[
            ProbeRun(
                id=o.probe.id,
                argv=list(o.probe.argv),
                status=o.status,
                exit_code=o.exit_code,
                duration=o.duration,
                error=o.error,
            )
            for o in outputs.values()
        ],
    )


async def diagnose(
    execution: ExecutionService,
    host: str | HostSnapshot,
    caller: Caller,
    analyzers: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
) -> DiagnosisReport:
    """Run the analyzers on a host and report their findings, most severe first.

    Every command is a read-only argv judged by the policy for this caller and host and
    recorded in the audit log under the report's ``run_id``; next steps are judged, never run.

    Args:
        execution: The execution service.
        host: A host name or an inventory snapshot.
        caller: Whose permissions apply.
        analyzers: Analyzer ids (default: all, see ``tend.diagnostics.analyzers.ANALYZERS``).
        progress: Awaited with ``(fraction, message)`` between rounds.

    Returns:
        The report.

    Raises:
        ValidationFailed: For an unknown analyzer id.
        NotFound: For an unknown host name.
    """
    specs = select_analyzers(analyzers)
    target = await _resolve(execution, host)
    config = DiagnosticsConfig.from_settings(execution.settings)
    run_id, started, clock = uuid.uuid4().hex, utcnow(), time.monotonic()
    concurrency = min(CONCURRENCY, execution.settings.ssh_max_channels_per_host)

    async def run(probes: Sequence[Probe]) -> dict[str, ProbeOutput]:
        return await gather(
            execution, caller, target, probes, run_id=run_id, concurrency=concurrency
        )

    async def report(message: str, fraction: float) -> None:
        if progress is not None:
            await progress(fraction, message)

    outputs = await run([shared.clock()])
    first = outputs["clock"]
    if unreachable(first):
        down = finding(
            CONNECTION, Severity.CRITICAL, f"{target.name} cannot be reached", [first.why_not()]
        )
        return _report(
            target,
            started=started,
            clock=clock,
            run_id=run_id,
            specs=specs,
            findings=[down],
            outputs=outputs,
        )
    await report("gathering", 0.1)
    planned = [probe for spec in specs for probe in _plan(spec, partial(spec.probes, config))]
    outputs.update(await run(planned))
    remembered = await load_baselines(
        execution.database, target.name, [s.id for s in specs if s.baseline]
    )

    def readable(argv: Sequence[str]) -> bool:
        try:
            return execution.judge(argv, caller.role, [target]).decision.risk is Risk.READ
        except InvalidArgvError:
            return False

    def observe(spec: AnalyzerSpec) -> Observations:
        return Observations(
            host=target.name,
            outputs=outputs,
            now=utcnow(),
            config=config,
            local=target.transport == "local",
            readable=readable,
            baseline=remembered.get(spec.id),
        )

    await report("following up", 0.6)
    more = [
        probe
        for spec in specs
        for probe in _plan(spec, partial(spec.follow_up, observe(spec)))
        if probe.id not in outputs
    ]
    if more:
        outputs.update(await run(more))
    await report("analyzing", 0.9)
    findings: list[Finding] = []
    learned: dict[str, object] = {}
    for spec in specs:
        obs = observe(spec)
        findings += _safely(spec, obs)
        if spec.baseline and obs.new_baseline is not None:
            learned[spec.id] = obs.new_baseline
    await save_baselines(execution.database, target.name, learned)
    _judge_steps(execution, caller, target, findings)
    return _report(
        target,
        started=started,
        clock=clock,
        run_id=run_id,
        specs=specs,
        findings=findings,
        outputs=outputs,
    )
