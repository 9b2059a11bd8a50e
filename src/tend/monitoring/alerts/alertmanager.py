"""Alerts from an existing Prometheus: Alertmanager's webhook (version 4) enters tend's list.

Each Alertmanager alert becomes an alert of source ``alertmanager`` keyed by its fingerprint;
``resolved`` ones resolve. tend does not notify about them again (Alertmanager already routes
its own notifications) and its evaluation leaves them alone.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tend.errors import Conflict
from tend.monitoring.alerts.models import ACTIVE_STATES, Alert
from tend.monitoring.alerts.schemas import (
    AlertmanagerAlert,
    AlertmanagerReceipt,
    AlertmanagerWebhook,
)

_SEVERITY = {
    "critical": "critical",
    "crit": "critical",
    "page": "critical",
    "error": "critical",
    "high": "critical",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "info": "info",
    "informational": "info",
    "low": "info",
    "none": "info",
}
# Alertmanager sends this "zero" time as endsAt of alerts that have not ended.
_NO_END_YEAR = 1


def fingerprint_of(alert: AlertmanagerAlert) -> str:
    """Key an Alertmanager alert: its own fingerprint, or its sorted labels when absent."""
    basis = alert.fingerprint or json.dumps(sorted(alert.labels.items()))
    return hashlib.sha256(f"alertmanager:{basis}".encode()).hexdigest()


def host_of(labels: dict[str, str]) -> str | None:
    """The host an alert is about: label ``host``, else ``instance`` without its port."""
    if labels.get("host"):
        return labels["host"][:253]
    instance = labels.get("instance")
    if not instance:
        return None
    if instance.startswith("["):  # [IPv6]:port
        return instance[1:].split("]", 1)[0][:253]
    name, _, port = instance.rpartition(":")
    return (name if name and port.isdigit() else instance)[:253]


def severity_of(labels: dict[str, str]) -> str:
    """Map a ``severity`` label onto info / warning / critical (unknown: warning)."""
    return _SEVERITY.get(labels.get("severity", "").lower(), "warning")


async def receive(
    session: AsyncSession, body: AlertmanagerWebhook, now: datetime
) -> AlertmanagerReceipt:
    """Record an Alertmanager webhook's alerts.

    Raises:
        Conflict: When a concurrent webhook created the same alert (Alertmanager retries).
    """
    keys = {fingerprint_of(a) for a in body.alerts}
    query = select(Alert).where(Alert.fingerprint.in_(keys), Alert.state.in_(ACTIVE_STATES))
    active = {a.fingerprint: a for a in (await session.execute(query)).scalars()}
    firing = resolved = 0
    for item in body.alerts:
        key = fingerprint_of(item)
        current = active.get(key)
        if item.status == "firing":
            firing += 1
            if current is None:
                current = _new(item, key, now)
                session.add(current)
                active[key] = current
            _describe(current, item, now)
            continue
        resolved += 1
        ended = _end_of(item) or now
        if current is None:
            current = await _past_episode(session, key, item) or _new(item, key, now)
            session.add(current)
        _describe(current, item, now)
        current.state = "resolved"
        current.resolved_at = current.resolved_at or ended
        active.pop(key, None)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("the same alert arrived twice at once; send it again") from exc
    return AlertmanagerReceipt(received=len(body.alerts), firing=firing, resolved=resolved)


def _end_of(item: AlertmanagerAlert) -> datetime | None:
    end = item.ends_at
    if end is None or end.year <= _NO_END_YEAR or end < item.starts_at:
        return None
    return end


def _new(item: AlertmanagerAlert, key: str, now: datetime) -> Alert:
    return Alert(
        fingerprint=key,
        source="alertmanager",
        rule_name=item.labels.get("alertname", "alertmanager")[:200],
        host=host_of(item.labels),
        labels={},
        annotations={},
        severity="warning",
        state="firing",
        started_at=item.starts_at,
        fired_at=item.starts_at,
        updated_at=now,
    )


def _describe(alert: Alert, item: AlertmanagerAlert, now: datetime) -> None:
    alert.labels = dict(item.labels)
    alert.annotations = dict(item.annotations)
    alert.severity = severity_of(item.labels)
    alert.updated_at = now


async def _past_episode(session: AsyncSession, key: str, item: AlertmanagerAlert) -> Alert | None:
    """A resolved episode already recorded for this start (Alertmanager repeats itself)."""
    query = select(Alert).where(Alert.fingerprint == key, Alert.started_at == item.starts_at)
    return (await session.execute(query.limit(1))).scalar_one_or_none()
