"""Reading alerts: the current list, the history of episodes, one alert with its deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from tend.errors import NotFound
from tend.monitoring.alerts.models import (
    ACTIVE_STATES,
    Alert,
    AlertDeliveryAttempt,
    AlertNotification,
)
from tend.monitoring.alerts.schemas import (
    AlertDetail,
    AlertPublic,
    DeliveryAttemptPublic,
    NotificationPublic,
    WebhookTargetPublic,
)
from tend.monitoring.alerts.silences import active_silences, silencing


def _filtered(
    query: Select[Alert],
    *,
    host: str | None,
    rule: str | None,
    severity: str | None,
    source: str | None,
) -> Select[Alert]:
    for column, value in (
        (Alert.host, host),
        (Alert.rule_name, rule),
        (Alert.severity, severity),
        (Alert.source, source),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


async def _render(
    session: AsyncSession, alerts: Sequence[Alert], now: datetime
) -> list[AlertPublic]:
    silences = await active_silences(session, now)
    rendered = []
    for alert in alerts:
        public = AlertPublic.model_validate(alert)
        if alert.state != "resolved":
            public.silenced_by = silencing(silences, alert)
        rendered.append(public)
    return rendered


async def list_alerts(
    session: AsyncSession,
    now: datetime,
    *,
    states: Sequence[str] | None = None,
    host: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    limit: int = 500,
) -> list[AlertPublic]:
    """List alerts in the given states (default: pending and firing), most severe first."""
    wanted = list(states) if states else list(ACTIVE_STATES)
    query = select(Alert).where(Alert.state.in_(wanted))
    query = _filtered(query, host=host, rule=rule, severity=severity, source=source)
    query = query.order_by(Alert.started_at.desc(), Alert.id.desc()).limit(limit)
    alerts = list((await session.execute(query)).scalars())
    order = {"critical": 0, "warning": 1, "info": 2}
    alerts.sort(key=lambda a: (a.state != "firing", order.get(a.severity, 3)))
    return await _render(session, alerts, now)


async def alert_history(
    session: AsyncSession,
    now: datetime,
    *,
    host: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AlertPublic]:
    """List alert episodes of any state, newest first, optionally in a time window."""
    query = _filtered(select(Alert), host=host, rule=rule, severity=severity, source=source)
    if since is not None:
        query = query.where(Alert.started_at >= since)
    if until is not None:
        query = query.where(Alert.started_at < until)
    query = query.order_by(Alert.started_at.desc(), Alert.id.desc()).limit(limit)
    return await _render(session, list((await session.execute(query)).scalars()), now)


async def alert_detail(session: AsyncSession, alert_id: int, now: datetime) -> AlertDetail:
    """Show one alert with its notifications and every delivery attempt.

    Raises:
        NotFound: When there is no such alert.
    """
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    [public] = await _render(session, [alert], now)
    notifications = list(
        (
            await session.execute(
                select(AlertNotification)
                .where(AlertNotification.alert_id == alert_id)
                .order_by(AlertNotification.id)
            )
        ).scalars()
    )
    attempts: dict[int, list[DeliveryAttemptPublic]] = {n.id: [] for n in notifications}
    if notifications:
        rows = await session.execute(
            select(AlertDeliveryAttempt)
            .where(AlertDeliveryAttempt.notification_id.in_(list(attempts)))
            .order_by(AlertDeliveryAttempt.notification_id, AlertDeliveryAttempt.attempt)
        )
        for row in rows.scalars():
            attempts[row.notification_id].append(DeliveryAttemptPublic.model_validate(row))
    return AlertDetail(
        **public.model_dump(),
        notifications=[
            NotificationPublic(
                id=n.id,
                event=n.event,
                target=WebhookTargetPublic.redacted(
                    {"url": n.target_url, "format": n.target_format}
                ),
                status=n.status,
                attempts=attempts[n.id],
                created_at=n.created_at,
                delivered_at=n.delivered_at,
                last_error=n.last_error,
            )
            for n in notifications
        ],
    )
