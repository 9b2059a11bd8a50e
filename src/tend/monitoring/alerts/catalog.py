"""Alert rules: list, create, change and delete them, checked against the metric registry."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tend.errors import Conflict, NotFound
from tend.monitoring.alerts.models import AlertRule
from tend.monitoring.alerts.rules import check_rule, check_threshold
from tend.monitoring.alerts.schemas import RuleCreate, RuleUpdate

_NULLABLE = frozenset({"description", "threshold", "threshold_per_cpu"})


async def list_rules(session: AsyncSession, *, enabled: bool | None = None) -> Sequence[AlertRule]:
    """List rules by name, optionally only the enabled (or disabled) ones."""
    query = select(AlertRule).order_by(AlertRule.name)
    if enabled is not None:
        query = query.where(AlertRule.enabled.is_(enabled))
    return list((await session.execute(query)).scalars())


async def get_rule(session: AsyncSession, name: str) -> AlertRule:
    """Load a rule by name.

    Raises:
        NotFound: When there is no such rule.
    """
    rule = (
        await session.execute(select(AlertRule).where(AlertRule.name == name))
    ).scalar_one_or_none()
    if rule is None:
        raise NotFound(f"alert rule {name!r} not found")
    return rule


async def create_rule(session: AsyncSession, body: RuleCreate) -> AlertRule:
    """Create a rule.

    Raises:
        ValidationFailed: For an unknown metric or label, or a missing or double threshold.
        Conflict: When a rule of that name exists.
    """
    check_rule(body.metric, body.match_labels)
    check_threshold(body.threshold, body.threshold_per_cpu)
    values = body.model_dump(exclude={"notify"})
    rule = AlertRule(**values, notify=[t.model_dump(mode="json") for t in body.notify])
    session.add(rule)
    await _flush(session, body.name)
    return rule


async def update_rule(session: AsyncSession, rule: AlertRule, body: RuleUpdate) -> AlertRule:
    """Change the fields given; a new threshold of one kind clears the other kind.

    Raises:
        ValidationFailed: For an unknown metric or label, or both thresholds at once.
        Conflict: When renaming onto an existing rule.
    """
    changes = body.model_dump(exclude_unset=True, exclude={"notify"})
    if body.threshold is not None and body.threshold_per_cpu is not None:
        check_threshold(body.threshold, body.threshold_per_cpu)  # raises: both given
    if body.threshold is not None:
        changes["threshold_per_cpu"] = None
    elif body.threshold_per_cpu is not None:
        changes["threshold"] = None
    else:
        changes.pop("threshold", None)
        changes.pop("threshold_per_cpu", None)
    # Only the description may be cleared with null; other nulls mean "unchanged".
    changes = {k: v for k, v in changes.items() if v is not None or k in _NULLABLE}
    check_rule(changes.get("metric", rule.metric), changes.get("match_labels", rule.match_labels))
    check_threshold(
        changes.get("threshold", rule.threshold),
        changes.get("threshold_per_cpu", rule.threshold_per_cpu),
    )
    for key, value in changes.items():
        setattr(rule, key, value)
    if body.notify is not None:
        rule.notify = [t.model_dump(mode="json") for t in body.notify]
    await _flush(session, rule.name)
    return rule


async def delete_rule(session: AsyncSession, rule: AlertRule) -> None:
    """Delete a rule; its active alerts resolve at the next evaluation, history stays."""
    await session.delete(rule)
    await session.flush()


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an alert rule named {name!r} already exists") from exc
