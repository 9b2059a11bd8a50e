"""Alert evaluation: rules on the latest snapshots move alerts along and queue notifications.

One evaluation reads the enabled rules, the inventory's tags, the active alerts and the active
silences (four queries), compares in memory, and writes only what changed. Notifications are
rows here; the ``alerts.notify`` job delivers them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tend.db import Database, utcnow
from tend.hosts.models import Host, HostTag
from tend.monitoring.alerts.catalog import list_rules
from tend.monitoring.alerts.engine import (
    FleetView,
    Observation,
    condition_without_series,
    next_state,
    observe,
)
from tend.monitoring.alerts.models import ACTIVE_STATES, Alert, AlertNotification, AlertSilence
from tend.monitoring.alerts.rules import RuleSpec
from tend.monitoring.alerts.schemas import WebhookTarget
from tend.monitoring.alerts.silences import active_silences, silencing
from tend.monitoring.notify import build_payload, unique_targets
from tend.monitoring.registry import Snapshot
from tend.settings import Settings

logger = logging.getLogger("tend.alerts")

Clock = Callable[[], datetime]


class SnapshotSource(Protocol):
    """Where the newest snapshot of every host is kept (``LatestValues`` or a shared cache)."""

    async def all(self) -> list[Snapshot]:
        """Return every host's newest snapshot."""
        ...


@dataclass
class Evaluation:
    """What one evaluation did."""

    rules: int = 0
    series: int = 0
    started: int = 0
    fired: int = 0
    resolved: int = 0
    notifications: list[int] = field(default_factory=list)
    skipped: bool = False


class AlertService:
    """Evaluates the rules; holds the clock (tests pass a controllable one) and global targets."""

    def __init__(self, database: Database, settings: Settings, *, clock: Clock = utcnow) -> None:
        """Bind the service.

        Args:
            database: The database.
            settings: Settings (``TEND_ALERT_WEBHOOKS`` are checked here, at start).
            clock: Returns the current time (aware UTC).

        Raises:
            pydantic.ValidationError: When a global webhook target is malformed.
        """
        self.database = database
        self.clock = clock
        self.webhooks = [
            WebhookTarget.model_validate({"url": t} if isinstance(t, str) else t).model_dump(
                mode="json"
            )
            for t in settings.alert_webhooks
        ]
        self._lock = asyncio.Lock()

    async def evaluate(self, latest: SnapshotSource) -> Evaluation:
        """Evaluate every enabled rule on the newest snapshots, once.

        Args:
            latest: The newest snapshot of each host.

        Returns:
            Counts of what changed and the ids of the notifications to deliver. ``skipped``
            when another process evaluated at the same moment (nothing was written here).
        """
        async with self._lock:
            snapshots = await latest.all()
            now = self.clock()
            try:
                async with self.database.session() as session:
                    return await self._evaluate(session, snapshots, now)
            except IntegrityError:
                logger.warning("another evaluation created the same alert; skipped this one")
                return Evaluation(skipped=True)

    async def _evaluate(
        self, session: AsyncSession, snapshots: Sequence[Snapshot], now: datetime
    ) -> Evaluation:
        rows = await list_rules(session)
        rules = [RuleSpec.of(r) for r in rows if r.enabled]
        by_id = {rule.id: rule for rule in rules}
        # A disabled rule's alerts resolve, and its own webhooks still hear about it.
        disabled = {r.id: RuleSpec.of(r) for r in rows if not r.enabled}
        fleet = FleetView(snapshots, await _inventory(session))
        query = (
            select(Alert)
            .where(Alert.source == "rule", Alert.state.in_(ACTIVE_STATES))
            .with_for_update()
        )
        active = {a.fingerprint: a for a in (await session.execute(query)).scalars()}
        observations = observe(rules, fleet)
        result = Evaluation(rules=len(rules), series=len(observations))
        touched: list[tuple[Alert, RuleSpec | None]] = []
        for key, seen in observations.items():
            alert = active.pop(key, None)
            if alert is None and not seen.holds:
                continue
            state = next_state(
                alert.state if alert else None,
                seen.holds,
                since=alert.started_at if alert else None,
                now=now,
                for_seconds=seen.rule.for_seconds,
            )
            changed = await _move(session, alert, state, seen=seen, now=now, result=result)
            if changed is not None:
                touched.append((changed, seen.rule))
        for alert in active.values():
            rule = by_id.get(alert.rule_id) if alert.rule_id is not None else None
            condition = condition_without_series(rule, alert.host, fleet)
            state = next_state(
                alert.state,
                condition,
                since=alert.started_at,
                now=now,
                for_seconds=rule.for_seconds if rule else 0.0,
            )
            changed = await _move(session, alert, state, seen=None, now=now, result=result)
            if changed is not None:
                touched.append((changed, rule or disabled.get(alert.rule_id or 0)))
        await session.flush()
        silences = await active_silences(session, now)
        notifications = [
            n for alert, rule in touched for n in self._notify(alert, rule, silences, now)
        ]
        session.add_all(notifications)
        await session.flush()
        result.notifications = [n.id for n in notifications]
        return result

    def _notify(
        self,
        alert: Alert,
        rule: RuleSpec | None,
        silences: Sequence[AlertSilence],
        now: datetime,
    ) -> list[AlertNotification]:
        """Notifications the alert's state calls for; none while a silence matches it."""
        if alert.state == "firing" and alert.notified_state != "firing":
            event = "firing"
        elif alert.state == "resolved" and alert.notified_state == "firing":
            event = "resolved"
        else:
            return []
        if silencing(silences, alert):
            return []
        alert.notified_state = event
        targets = unique_targets(rule.notify if rule else (), self.webhooks)
        return [
            AlertNotification(
                alert_id=alert.id,
                event=event,
                target_url=target["url"],
                target_format=target["format"],
                payload=build_payload(alert, event, target["format"], at=now),
                status="pending",
                attempts=0,
                created_at=now,
            )
            for target in targets
        ]


async def _move(
    session: AsyncSession,
    alert: Alert | None,
    state: str | None,
    *,
    seen: Observation | None,
    now: datetime,
    result: Evaluation,
) -> Alert | None:
    """Apply a state to an alert row; return the row when it is (still) worth notifying about."""
    if alert is None:
        if state is None or seen is None:
            return None
        alert = _start(seen, state, now)
        session.add(alert)
        result.started += 1
        result.fired += state == "firing"
        return alert
    if state is None:  # a pending alert whose condition cleared never fired: keep no trace
        await session.delete(alert)
        return None
    if seen is not None:
        _refresh(alert, seen)
    if state == alert.state:
        return alert if state == "firing" else None
    alert.state = state
    alert.updated_at = now
    if state == "firing":
        alert.fired_at = now
        alert.value_fired = alert.value
        result.fired += 1
    elif state == "resolved":
        alert.resolved_at = now
        alert.value_resolved = alert.value
        result.resolved += 1
    return alert


def _start(seen: Observation, state: str, now: datetime) -> Alert:
    rule = seen.rule
    annotations = {"summary": rule.description} if rule.description else {}
    return Alert(
        fingerprint=seen.fingerprint,
        source="rule",
        rule_id=rule.id,
        rule_name=rule.name,
        host=seen.host,
        labels={**rule.labels, **dict(seen.labels)},
        annotations=annotations,
        severity=rule.severity,
        state=state,
        metric=rule.metric,
        comparison=rule.comparison,
        threshold=seen.threshold,
        value=seen.value,
        value_started=seen.value,
        value_fired=seen.value if state == "firing" else None,
        started_at=now,
        fired_at=now if state == "firing" else None,
        updated_at=now,
    )


def _refresh(alert: Alert, seen: Observation) -> None:
    """Follow the series' value and the rule's current name, severity and threshold."""
    rule = seen.rule
    for name, value in (
        ("value", seen.value),
        ("threshold", seen.threshold),
        ("severity", rule.severity),
        ("rule_name", rule.name),
        ("comparison", rule.comparison),
    ):
        if getattr(alert, name) != value:
            setattr(alert, name, value)


async def _inventory(session: AsyncSession) -> dict[str, list[str]]:
    """Return every inventory host with its tags."""
    rows = await session.execute(
        select(Host.name, HostTag.tag).outerjoin(HostTag, HostTag.host_id == Host.id)
    )
    inventory: dict[str, list[str]] = {}
    for name, tag in rows:
        tags = inventory.setdefault(name, [])
        if tag is not None:
            tags.append(tag)
    return inventory
