"""HTTP endpoints of alerting: viewers read; operators and admins write rules and silences."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from tend.auth.deps import Operator, Viewer
from tend.context import ContextDep, SessionDep
from tend.errors import ValidationFailed
from tend.monitoring.alerts import alertmanager, catalog, queries, silences
from tend.monitoring.alerts.schemas import (
    AlertDetail,
    AlertmanagerReceipt,
    AlertmanagerWebhook,
    AlertPublic,
    AlertState,
    RuleCreate,
    RulePublic,
    RuleUpdate,
    Severity,
    SilenceCreate,
    SilencePublic,
    SilenceUpdate,
    Source,
    rule_public,
)
from tend.monitoring.alerts.service import AlertService

router = APIRouter(prefix="/alerts", tags=["alerts"])

RuleName = Annotated[str, Path(max_length=100, description="rule name")]
HostFilter = Annotated[str | None, Query(max_length=253, description="only this host")]
RuleFilter = Annotated[str | None, Query(max_length=200, description="only this rule")]


def get_alerts(context: ContextDep) -> AlertService:
    """Return the alert service built in the lifespan (it holds the clock)."""
    return context.alerts


AlertsDep = Annotated[AlertService, Depends(get_alerts)]


@router.get("", response_model=list[AlertPublic])
async def list_alerts(
    session: SessionDep,
    alerts: AlertsDep,
    _: Viewer,
    state: Annotated[
        list[AlertState] | None, Query(description="default: pending and firing")
    ] = None,
    host: HostFilter = None,
    rule: RuleFilter = None,
    severity: Severity | None = None,
    source: Source | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AlertPublic]:
    """List current alerts (firing first, then by severity), or those in the given states."""
    return await queries.list_alerts(
        session,
        alerts.clock(),
        states=state,
        host=host,
        rule=rule,
        severity=severity,
        source=source,
        limit=limit,
    )


@router.get("/history", response_model=list[AlertPublic])
async def alert_history(
    session: SessionDep,
    alerts: AlertsDep,
    _: Viewer,
    host: HostFilter = None,
    rule: RuleFilter = None,
    severity: Severity | None = None,
    source: Source | None = None,
    since: Annotated[datetime | None, Query(description="started at or after")] = None,
    until: Annotated[datetime | None, Query(description="started before")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[AlertPublic]:
    """List alert episodes of every state, newest first."""
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise ValidationFailed("since and until need a time zone (e.g. ...Z)")
    if since is not None and until is not None and since >= until:
        raise ValidationFailed("since must be before until")
    return await queries.alert_history(
        session,
        alerts.clock(),
        host=host,
        rule=rule,
        severity=severity,
        source=source,
        since=since,
        until=until,
        limit=limit,
    )


@router.post("/alertmanager", response_model=AlertmanagerReceipt)
async def alertmanager_webhook(
    body: AlertmanagerWebhook, session: SessionDep, alerts: AlertsDep, _: Operator
) -> AlertmanagerReceipt:
    """Receive Alertmanager's webhook (version 4): its alerts enter tend's list (operator)."""
    return await alertmanager.receive(session, body, alerts.clock())


@router.get("/rules", response_model=list[RulePublic])
async def list_rules(
    session: SessionDep,
    _: Viewer,
    enabled: Annotated[bool | None, Query(description="only enabled (or disabled) rules")] = None,
) -> list[RulePublic]:
    """List alert rules by name."""
    return [rule_public(r) for r in await catalog.list_rules(session, enabled=enabled)]


@router.post("/rules", response_model=RulePublic, status_code=status.HTTP_201_CREATED)
async def create_rule(body: RuleCreate, session: SessionDep, _: Operator) -> RulePublic:
    """Create a rule (operator); an unknown metric is refused with the list of valid ones."""
    return rule_public(await catalog.create_rule(session, body))


@router.get("/rules/{name}", response_model=RulePublic)
async def get_rule(name: RuleName, session: SessionDep, _: Viewer) -> RulePublic:
    """Show one rule."""
    return rule_public(await catalog.get_rule(session, name))


@router.patch("/rules/{name}", response_model=RulePublic)
async def update_rule(
    name: RuleName, body: RuleUpdate, session: SessionDep, _: Operator
) -> RulePublic:
    """Change a rule (operator)."""
    rule = await catalog.get_rule(session, name)
    return rule_public(await catalog.update_rule(session, rule, body))


@router.delete("/rules/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(name: RuleName, session: SessionDep, _: Operator) -> None:
    """Delete a rule (operator); its alerts resolve at the next evaluation."""
    await catalog.delete_rule(session, await catalog.get_rule(session, name))


@router.get("/silences", response_model=list[SilencePublic])
async def list_silences(
    session: SessionDep,
    alerts: AlertsDep,
    _: Viewer,
    expired: Annotated[bool, Query(description="include expired silences")] = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[SilencePublic]:
    """List silences, newest first (active and upcoming unless ``expired=true``)."""
    now = alerts.clock()
    found = await silences.list_silences(session, now, include_expired=expired, limit=limit)
    return [silences.public(s, now) for s in found]


@router.post("/silences", response_model=SilencePublic, status_code=status.HTTP_201_CREATED)
async def create_silence(
    body: SilenceCreate, session: SessionDep, alerts: AlertsDep, principal: Operator
) -> SilencePublic:
    """Silence matching alerts for a while (operator): they change state but notify nobody."""
    now = alerts.clock()
    silence = await silences.create_silence(
        session, body, now=now, created_by=principal.user.username
    )
    return silences.public(silence, now)


@router.get("/silences/{silence_id}", response_model=SilencePublic)
async def get_silence(
    silence_id: int, session: SessionDep, alerts: AlertsDep, _: Viewer
) -> SilencePublic:
    """Show one silence."""
    return silences.public(await silences.get_silence(session, silence_id), alerts.clock())


@router.patch("/silences/{silence_id}", response_model=SilencePublic)
async def update_silence(
    silence_id: int, body: SilenceUpdate, session: SessionDep, alerts: AlertsDep, _: Operator
) -> SilencePublic:
    """Extend or shorten a silence, or change its comment (operator)."""
    now = alerts.clock()
    silence = await silences.get_silence(session, silence_id)
    return silences.public(await silences.update_silence(session, silence, body, now=now), now)


@router.delete("/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT)
async def expire_silence(
    silence_id: int, session: SessionDep, alerts: AlertsDep, _: Operator
) -> None:
    """End a silence now (operator); it stays listed as expired."""
    silence = await silences.get_silence(session, silence_id)
    await silences.expire_silence(session, silence, now=alerts.clock())


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_alert(
    alert_id: int, session: SessionDep, alerts: AlertsDep, _: Viewer
) -> AlertDetail:
    """Show one alert with its notifications and each delivery attempt."""
    return await queries.alert_detail(session, alert_id, alerts.clock())
