"""Alert notifications to webhooks: payloads (generic JSON or Slack), delivery with retries.

Evaluation only writes notification rows; the ``alerts.notify`` job delivers them, so a slow
or failing receiver never delays an evaluation. Every attempt is recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from tend.db import Database, utcnow
from tend.jobs.kinds import JobContext, job_kind
from tend.monitoring.alerts.models import Alert, AlertDeliveryAttempt, AlertNotification

MAX_BACKOFF = 60.0
_CONCURRENCY = 10
_ERROR_CHARS = 500
# Statuses below 500 worth another try; any other 3xx/4xx is final (redirects are not followed).
_RETRYABLE = frozenset({408, 425, 429})

Sleep = Callable[[float], Awaitable[None]]


def unique_targets(*groups: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """Merge target lists, each (url, format) once, in order."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for group in groups:
        for target in group:
            key = (target["url"], target.get("format", "json"))
            seen.setdefault(key, {"url": key[0], "format": key[1]})
    return list(seen.values())


def headline(alert: Alert, event: str) -> str:
    """One line a person reads: what, where, the value and the threshold."""
    where = alert.host or "-"
    series = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "host")
    if series:
        where = f"{where} ({series})"
    text = f"[{event.upper()}] {alert.severity} {alert.rule_name} on {where}"
    value = alert.value_resolved if event == "resolved" else alert.value
    if alert.metric and value is not None and alert.threshold is not None:
        text += f": {alert.metric} = {value:g} ({alert.comparison} {alert.threshold:g})"
    summary = alert.annotations.get("summary") or alert.annotations.get("description")
    if summary:
        text += f" - {summary}"
    return text


def build_payload(alert: Alert, event: str, fmt: str, *, at: datetime) -> dict[str, Any]:
    """Build a notification body.

    Args:
        alert: The alert (flushed, so it has an id).
        event: ``firing`` or ``resolved``.
        fmt: ``json`` (tend's document) or ``slack`` (``{"text": ...}``).
        at: When the event happened.

    Returns:
        The JSON body.
    """
    text = headline(alert, event)
    if fmt == "slack":
        return {"text": text}
    return {
        "source": "tend",
        "event": event,
        "at": at.isoformat(),
        "text": text,
        "alert": {
            "id": alert.id,
            "rule": alert.rule_name,
            "host": alert.host,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "severity": alert.severity,
            "state": alert.state,
            "metric": alert.metric,
            "comparison": alert.comparison,
            "threshold": alert.threshold,
            "value": alert.value,
            "started_at": alert.started_at.isoformat(),
            "fired_at": alert.fired_at.isoformat() if alert.fired_at else None,
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        },
    }


def attach_investigation(
    payload: dict[str, Any], fmt: str, investigation: Mapping[str, Any]
) -> dict[str, Any]:
    """A notification body with the alert's investigation: JSON gets all of it, Slack the summary.

    Args:
        payload: The body built by :func:`build_payload`.
        fmt: ``json`` or ``slack``.
        investigation: What the investigation found (``summary``, ``findings``, ...).

    Returns:
        The new body.
    """
    if fmt == "slack":
        summary = investigation.get("summary")
        return {**payload, "text": f"{payload['text']}\n{summary}"} if summary else payload
    return {**payload, "investigation": dict(investigation)}


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard to try: attempts per notification, first backoff (doubling), HTTP timeout."""

    attempts: int = 5
    backoff: float = 2.0
    timeout: float = 10.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (Retry-After is honoured)."""
        hinted: str = response.headers.get("retry-after", "") if response is not None else ""
        if hinted.isdigit():
            return min(float(hinted), MAX_BACKOFF)
        return min(self.backoff * 2.0 ** (attempt - 1), MAX_BACKOFF)


async def deliver(
    database: Database,
    notification_ids: Sequence[int],
    policy: DeliveryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, int]:
    """Deliver notifications (those still pending), retrying failures with backoff.

    Args:
        database: The database holding the notifications.
        notification_ids: Which notifications.
        policy: Attempts, backoff and timeout.
        sleep: How to wait between attempts (tests pass a fake).

    Returns:
        How many ended ``delivered``, ``failed`` or were ``skipped`` (not pending).
    """
    counts = {"delivered": 0, "failed": 0, "skipped": 0}
    limit = asyncio.Semaphore(_CONCURRENCY)
    timeout = httpx.Timeout(policy.timeout)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:

        async def one(notification_id: int) -> None:
            async with limit:
                outcome = await _deliver_one(database, client, notification_id, policy, sleep)
            counts[outcome] += 1

        await asyncio.gather(*(one(i) for i in notification_ids))
    return counts


async def _deliver_one(
    database: Database,
    client: httpx.AsyncClient,
    notification_id: int,
    policy: DeliveryPolicy,
    sleep: Sleep,
) -> str:
    async with database.session() as session:
        row = await session.get(AlertNotification, notification_id)
        if row is None or row.status != "pending":
            return "skipped"
        url, payload, done = row.target_url, row.payload, row.attempts
    attempt = done
    while True:
        attempt += 1
        response, error, duration = await _post(client, url, payload)
        ok = response is not None and response.is_success
        code = response.status_code if response is not None else None
        permanent = code is not None and code < 500 and code not in _RETRYABLE
        final = ok or permanent or attempt >= policy.attempts
        status = "delivered" if ok else "failed" if final else "pending"
        await _record(
            database,
            notification_id,
            attempt=attempt,
            status=status,
            code=code,
            error=error,
            duration=duration,
        )
        if final:
            return status
        await sleep(policy.delay(attempt, response))


async def _post(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any]
) -> tuple[httpx.Response | None, str | None, float]:
    started = time.perf_counter()
    try:
        response = await client.post(url, json=payload)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return None, error[:_ERROR_CHARS], time.perf_counter() - started
    duration = time.perf_counter() - started
    if response.is_success:
        return response, None, duration
    body = response.text.strip().replace("\n", " ")
    return response, f"HTTP {response.status_code}: {body}"[:_ERROR_CHARS], duration


async def _record(
    database: Database,
    notification_id: int,
    *,
    attempt: int,
    status: str,
    code: int | None,
    error: str | None,
    duration: float,
) -> None:
    now = utcnow()
    async with database.session() as session:
        row = await session.get(AlertNotification, notification_id)
        if row is None:  # the alert was deleted meanwhile
            return
        session.add(
            AlertDeliveryAttempt(
                notification_id=notification_id,
                attempt=attempt,
                at=now,
                status_code=code,
                error=error,
                duration=duration,
            )
        )
        row.attempts = attempt
        row.status = status
        row.last_error = error
        if status == "delivered":
            row.delivered_at = now


@job_kind("alerts.notify", idempotent=True, description="deliver alert notifications to webhooks")
async def notify_job(ctx: JobContext) -> dict[str, Any]:
    """Deliver the notifications named in ``params["ids"]``."""
    settings = ctx.app.settings
    policy = DeliveryPolicy(
        attempts=settings.alert_notify_attempts,
        backoff=settings.alert_notify_backoff,
        timeout=settings.alert_notify_timeout,
    )
    ids = [int(i) for i in ctx.params.get("ids", [])]
    return await deliver(ctx.app.database, ids, policy)
