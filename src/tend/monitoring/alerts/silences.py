"""Silences: which alerts they match, and creating, changing and expiring them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tend.errors import NotFound, ValidationFailed
from tend.monitoring.alerts.models import Alert, AlertSilence
from tend.monitoring.alerts.rules import labels_match
from tend.monitoring.alerts.schemas import SilenceCreate, SilencePublic, SilenceUpdate


def matches(silence: AlertSilence, alert: Alert) -> bool:
    """Whether a silence's matchers all match an alert.

    Label matchers see the alert's labels plus ``alertname``, ``host`` and ``severity``.
    """
    if silence.rule is not None and not fnmatchcase(alert.rule_name, silence.rule):
        return False
    if silence.host is not None and not (alert.host and fnmatchcase(alert.host, silence.host)):
        return False
    fields = {**alert.labels, "alertname": alert.rule_name, "severity": alert.severity}
    if alert.host:
        fields["host"] = alert.host
    return labels_match(silence.labels, fields)


def silencing(silences: Iterable[AlertSilence], alert: Alert) -> list[int]:
    """Return the ids of the silences that match an alert."""
    return [s.id for s in silences if matches(s, alert)]


async def active_silences(session: AsyncSession, now: datetime) -> list[AlertSilence]:
    """Return the silences in force at ``now``."""
    query = select(AlertSilence).where(AlertSilence.starts_at <= now, AlertSilence.ends_at > now)
    return list((await session.execute(query)).scalars())


def public(silence: AlertSilence, now: datetime) -> SilencePublic:
    """Render a silence with its state at ``now``."""
    state: Literal["pending", "active", "expired"] = (
        "pending" if silence.starts_at > now else "active" if silence.ends_at > now else "expired"
    )
    rendered = SilencePublic.model_validate(silence)
    rendered.state = state
    return rendered


async def list_silences(
    session: AsyncSession, now: datetime, *, include_expired: bool, limit: int
) -> Sequence[AlertSilence]:
    """List silences, newest first; expired ones only when asked."""
    query = select(AlertSilence).order_by(AlertSilence.id.desc()).limit(limit)
    if not include_expired:
        query = query.where(AlertSilence.ends_at > now)
    return list((await session.execute(query)).scalars())


async def get_silence(session: AsyncSession, silence_id: int) -> AlertSilence:
    """Load a silence.

    Raises:
        NotFound: When there is no such silence.
    """
    silence = await session.get(AlertSilence, silence_id)
    if silence is None:
        raise NotFound(f"silence {silence_id} not found")
    return silence


async def create_silence(
    session: AsyncSession, body: SilenceCreate, *, now: datetime, created_by: str
) -> AlertSilence:
    """Create a silence.

    Raises:
        ValidationFailed: When it would end before it starts or has already ended.
    """
    starts = body.starts_at or now
    ends = body.ends_at or starts + timedelta(seconds=body.duration or 0)
    _check_period(starts, ends, now)
    silence = AlertSilence(
        rule=body.rule,
        host=body.host,
        labels=body.labels,
        starts_at=starts,
        ends_at=ends,
        created_by=created_by,
        comment=body.comment,
        created_at=now,
    )
    session.add(silence)
    await session.flush()
    return silence


async def update_silence(
    session: AsyncSession, silence: AlertSilence, body: SilenceUpdate, *, now: datetime
) -> AlertSilence:
    """Extend or shorten a silence, or change its comment.

    Raises:
        ValidationFailed: When the new end is not after the start and now.
    """
    if body.ends_at is not None or body.duration is not None:
        ends = body.ends_at or now + timedelta(seconds=body.duration or 0)
        _check_period(silence.starts_at, ends, now)
        silence.ends_at = ends
    if body.comment is not None:
        silence.comment = body.comment
    await session.flush()
    return silence


async def expire_silence(session: AsyncSession, silence: AlertSilence, *, now: datetime) -> None:
    """End a silence now (it stays listed as expired); an expired one is left as it is."""
    if silence.ends_at <= now:
        return
    if silence.starts_at >= now:
        await session.delete(silence)
        return
    silence.ends_at = now
    await session.flush()


def _check_period(starts: datetime, ends: datetime, now: datetime) -> None:
    if ends <= now:
        raise ValidationFailed("a silence must end in the future")
    if ends <= starts:
        raise ValidationFailed("a silence must end after it starts")
    if (ends - starts).total_seconds() > 366 * 86400:
        raise ValidationFailed("a silence lasts at most 366 days")
