"""Alert investigations: when an alert of a rule with ``investigate: true`` fires, find out why.

The evaluation holds back the alert's ``firing`` notifications and queues
``assistant.investigate_alert``: diagnostics run first on the alert's host (the analyzers that
speak to the alert's metric, or all of them), then (when a model is configured) the assistant
investigates, as tend's own read-only caller (role viewer: it can read, never request a
change), in a conversation kept for review. The report — or the
diagnostics alone when no model is configured or the model failed — is attached to the alert
(``GET /api/v1/alerts/{id}/investigation``) and to its notifications, which are then delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tend.assistant.conversation_models import AlertInvestigation
from tend.auth.models import Role, User
from tend.db import Database, utcnow
from tend.diagnostics.findings import Severity
from tend.diagnostics.runner import diagnose
from tend.diagnostics.schemas import DiagnosisReport
from tend.errors import ServiceUnavailable, TendError
from tend.execution.service import Caller
from tend.jobs.kinds import JobContext, job_kind
from tend.monitoring.alerts.models import Alert, AlertNotification, AlertRule
from tend.monitoring.notify import attach_investigation, headline

if TYPE_CHECKING:
    from tend.context import AppContext

logger = logging.getLogger("tend.assistant")

SYSTEM_USER = "tend:alerts"
"""tend's own caller for alert investigations (a name no one can register; it cannot sign in)."""
NO_PASSWORD = "!"  # noqa: S105 - not a hash of anything: this user cannot sign in
INVESTIGATION_TIMEOUT = 300.0
"""The model's part is stopped after this (seconds); the notifications are not held longer."""
# The analyzers that speak to an alert's metric, by metric name prefix: diagnostics of a fired
# alert are quick and to the point (the assistant can still run the others).
ANALYZERS_FOR_METRIC: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("filesystem_", ("disk",)),
    ("disk_", ("disk", "load")),
    ("cpu_", ("load", "zombies")),
    ("load", ("load", "zombies")),
    ("processes_", ("zombies", "load")),
    ("memory_", ("memory", "swap")),
    ("swap_", ("swap", "memory")),
    ("systemd_failed_units", ("failed_units",)),
    ("reboot_required", ("updates",)),
    ("network_", ("listening_ports",)),
)
FINDINGS_IN_PROMPT = 10
EVIDENCE_IN_PROMPT = 4


async def system_caller(database: Database) -> Caller:
    """The read-only caller of alert investigations (created disabled on first use)."""
    async with database.session() as session:
        user = await session.scalar(select(User).where(User.username == SYSTEM_USER))
        if user is None:
            # "!" is no password hash: nobody can sign in as this user.
            user = User(
                username=SYSTEM_USER, password_hash=NO_PASSWORD, role="viewer", disabled=True
            )
            session.add(user)
            try:
                async with session.begin_nested():
                    await session.flush()
            except IntegrityError:  # made meanwhile by another investigation
                user = await session.scalar(select(User).where(User.username == SYSTEM_USER))
                assert user is not None
        return Caller(user_id=user.id, username=SYSTEM_USER, role=Role.VIEWER)


async def hold_for_investigation(app: AppContext, notification_ids: Sequence[int]) -> list[int]:
    """Queue an investigation for each firing alert whose rule asks for one.

    Args:
        app: The app context.
        notification_ids: Notifications an evaluation just created.

    Returns:
        The notifications to deliver now; the held ones go out when the investigation ends.
    """
    if not notification_ids:
        return []
    async with app.database.session() as session:
        rows = await session.execute(
            select(AlertNotification.id, AlertNotification.alert_id)
            .join(Alert, Alert.id == AlertNotification.alert_id)
            .join(AlertRule, AlertRule.id == Alert.rule_id)
            .where(
                AlertNotification.id.in_(notification_ids),
                AlertNotification.event == "firing",
                AlertRule.investigate.is_(True),
            )
        )
        held: dict[int, list[int]] = {}
        for notification_id, alert_id in rows:
            held.setdefault(alert_id, []).append(notification_id)
    now_sent = set(notification_ids) - {n for ids in held.values() for n in ids}
    for alert_id, ids in held.items():
        try:
            await app.jobs.enqueue(
                "assistant.investigate_alert",
                {"alert_id": alert_id, "notifications": sorted(ids)},
                requested_by="tend",
                idempotency_key=f"assistant.investigate_alert:{alert_id}:{min(ids)}",
            )
        except ServiceUnavailable:  # no investigation now: the notifications go out plain
            logger.warning("job broker unreachable; alert %s is notified uninvestigated", alert_id)
            now_sent.update(ids)
    return sorted(now_sent)


def analyzers_for(metric: str | None) -> list[str] | None:
    """The analyzers to run first for an alert on ``metric`` (``None``: every analyzer)."""
    for prefix, analyzers in ANALYZERS_FOR_METRIC:
        if metric is not None and metric.startswith(prefix):
            return list(analyzers)
    return None


def _diagnostics_brief(report: DiagnosisReport) -> dict[str, Any]:
    findings = [f for f in report.findings if f.severity is not Severity.OK]
    return {
        "host": report.host,
        "status": report.status.value,
        "run_id": report.run_id,
        "findings": [
            {
                "analyzer": f.analyzer,
                "severity": f.severity.value,
                "title": f.title,
                "evidence": f.evidence[:20],
                "likely_cause": f.likely_cause,
            }
            for f in findings
        ],
    }


def _diagnostics_summary(brief: dict[str, Any] | None, error: str | None) -> str:
    if brief is None:
        return f"diagnostics did not run: {error}" if error else "diagnostics did not run"
    findings = brief["findings"]
    if not findings:
        return f"diagnostics of {brief['host']}: every analyzer found the host healthy"
    worst = "; ".join(f"{f['severity']}: {f['title']}" for f in findings[:3])
    return f"diagnostics of {brief['host']} ({brief['status']}): {worst}"


def investigation_prompt(alert_line: str, brief: dict[str, Any] | None) -> str:
    """The question the assistant gets for a fired alert, with the diagnostics' findings."""
    lines = [
        f"This alert just fired: {alert_line}",
        "Investigate why, using the tools (you can only read; you cannot change anything), "
        "and submit a report: what is going on, the evidence, and what a human could do.",
    ]
    if brief is not None:
        lines.append(f"tend's diagnostics of {brief['host']} found (worst first):")
        for f in brief["findings"][:FINDINGS_IN_PROMPT]:
            lines.append(f"- [{f['severity']}] {f['analyzer']}: {f['title']}")
            lines.extend(f"    {e}" for e in f["evidence"][:EVIDENCE_IN_PROMPT])
        if not brief["findings"]:
            lines.append("- nothing: every analyzer found the host healthy")
    return "\n".join(lines)


async def _ask_model(
    app: AppContext, caller: Caller, alert_line: str, host: str | None, brief: dict[str, Any] | None
) -> tuple[str, str | None, dict[str, Any] | None, str | None]:
    """Run the assistant on the alert: (model, conversation id, report, error)."""
    # Imported here, not at the top: alerting imports this module, the model clients are slow
    # to import and needed only when an investigation runs.
    from tend.assistant.agent import model_label  # noqa: PLC0415
    from tend.assistant.conversations import claim, create_conversation  # noqa: PLC0415
    from tend.assistant.llm import aclose_model, build_model  # noqa: PLC0415
    from tend.assistant.turns import run_turn  # noqa: PLC0415

    model = build_model(app.settings)
    try:
        async with app.database.session() as session:
            conversation = await create_conversation(
                session,
                user_id=caller.user_id,
                role=caller.role,
                title=f"alert: {alert_line}"[:200],
                hosts=[host] if host else [],
            )
            conversation_id = conversation.id
        held = await claim(app.database, conversation_id, caller.role)
        prompt = investigation_prompt(alert_line, brief)
        async with asyncio.timeout(INVESTIGATION_TIMEOUT):
            done = await run_turn(app, held, caller, prompt, model)
    except TimeoutError:
        return model_label(model), None, None, "the investigation took too long and was stopped"
    finally:
        await aclose_model(model)
    if done.report is None:
        return model_label(model), conversation_id, None, f"the investigation ended {done.status}"
    return model_label(model), conversation_id, done.report.model_dump(mode="json"), None


async def investigate_alert(app: AppContext, alert_id: int) -> AlertInvestigation | None:
    """Diagnose the alert's host, ask the assistant, and store what was found.

    Args:
        app: The app context.
        alert_id: The alert.

    Returns:
        The stored investigation, or ``None`` when the alert is gone.
    """
    async with app.database.session() as session:
        alert = await session.get(Alert, alert_id)
        if alert is None:
            return None
        alert_line, host, metric = headline(alert, "firing"), alert.host, alert.metric
        row = await session.get(AlertInvestigation, alert_id)
        if row is None:
            session.add(
                AlertInvestigation(alert_id=alert_id, status="running", started_at=utcnow())
            )
    caller = await system_caller(app.database)
    brief: dict[str, Any] | None = None
    diagnostics_error: str | None = None
    if host is not None:
        try:
            diagnosis = await diagnose(app.execution, host, caller, analyzers_for(metric))
            brief = _diagnostics_brief(diagnosis)
        except TendError as exc:
            diagnostics_error = str(exc.detail)
    values: dict[str, Any] = {
        "diagnostics": brief,
        "summary": _diagnostics_summary(brief, diagnostics_error),
        "status": "diagnostics",
        "error": diagnostics_error,
    }
    try:
        model, conversation_id, report, error = await _ask_model(
            app, caller, alert_line, host, brief
        )
    except ServiceUnavailable as exc:  # no model configured (AssistantNotConfigured)
        values["error"] = values["error"] or str(exc.detail)
    else:
        values.update(model=model, conversation_id=conversation_id)
        if report is not None:
            values.update(status="completed", report=report, summary=report["summary"])
        else:
            values["error"] = error
    async with app.database.session() as session:
        row = await session.get(AlertInvestigation, alert_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)
        row.finished_at = utcnow()
        await session.flush()
        return row


def notification_view(row: AlertInvestigation) -> dict[str, Any]:
    """What a notification carries of an investigation."""
    report = row.report or {}
    return {
        "status": row.status,
        "summary": row.summary,
        "findings": report.get("findings") or (row.diagnostics or {}).get("findings", []),
        "proposed_actions": report.get("proposed_actions", []),
        "error": row.error,
        "model": row.model,
        "conversation_id": row.conversation_id,
    }


async def _attach(database: Database, row: AlertInvestigation, ids: Sequence[int]) -> None:
    view = notification_view(row)
    async with database.session() as session:
        for notification_id in ids:
            notification = await session.get(AlertNotification, notification_id)
            if notification is not None and notification.status == "pending":
                notification.payload = attach_investigation(
                    notification.payload, notification.target_format, view
                )


@job_kind(
    "assistant.investigate_alert",
    idempotent=True,
    description="investigate a fired alert (diagnostics, then the assistant) and notify",
)
async def investigate_alert_job(ctx: JobContext) -> dict[str, Any]:
    """Investigate ``params.alert_id``, attach the findings, deliver its held notifications."""
    alert_id = int(ctx.params["alert_id"])
    ids = [int(i) for i in ctx.params.get("notifications", [])]
    try:
        row = await investigate_alert(ctx.app, alert_id)
        if row is not None:
            await _attach(ctx.app.database, row, ids)
    finally:  # whatever happened, the held notifications go out
        if ids:
            await ctx.app.jobs.enqueue(
                "alerts.notify",
                {"ids": ids},
                requested_by="tend",
                idempotency_key=f"alerts.notify:investigated:{alert_id}:{min(ids)}",
            )
    if row is None:
        return {"alert_id": alert_id, "status": "alert gone"}
    return {"alert_id": alert_id, "status": row.status, "summary": row.summary}
