"""Request and response models of alerting: rules, alerts, silences, Alertmanager webhooks."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from tend.monitoring.alerts.models import AlertRule

Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
Severity = Literal["info", "warning", "critical"]
AlertState = Literal["pending", "firing", "resolved"]
Source = Literal["rule", "alertmanager"]

RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_MAX_FOR = 7 * 86400.0
MAX_SILENCE = 366 * 86400.0


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 20:
        msg = "at most 20 labels"
        raise ValueError(msg)
    for name, text in value.items():
        if not _LABEL_NAME.match(name):
            msg = f"label name {name!r} must match [A-Za-z_][A-Za-z0-9_]*"
            raise ValueError(msg)
        if len(text) > 200:
            msg = f"label {name} is longer than 200 characters"
            raise ValueError(msg)
    return value


def _check_aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        msg = "give a time zone (e.g. 2026-01-01T10:00:00Z)"
        raise ValueError(msg)
    return value


LabelMap = Annotated[dict[str, str], AfterValidator(_check_labels)]
Pattern = Annotated[str, Field(min_length=1, max_length=200)]
AwareTime = Annotated[datetime | None, AfterValidator(_check_aware)]


class WebhookTarget(BaseModel):
    """Where notifications go: a URL and the payload format (generic JSON or Slack)."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="http(s) URL receiving a POST per notification")
    format: Literal["json", "slack"] = Field(
        default="json", description='"json" (tend\'s payload) or "slack" ({"text": ...})'
    )

    @field_validator("url")
    @classmethod
    def _bounded(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(value)) > 2048:
            msg = "URL longer than 2048 characters"
            raise ValueError(msg)
        return value


class WebhookTargetPublic(BaseModel):
    """A webhook target as shown: only scheme and host (webhook paths often carry a secret)."""

    url: str
    format: str

    @classmethod
    def redacted(cls, target: dict[str, str]) -> WebhookTargetPublic:
        """Show a stored target without its path and query."""
        parts = urlsplit(target["url"])
        return cls(url=f"{parts.scheme}://{parts.netloc}/…", format=target["format"])


class _RuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=500)
    match_labels: LabelMap = Field(
        default_factory=dict, description="label -> glob the series must match, e.g. mount: /var*"
    )
    comparison: Comparison = ">"
    threshold: float | None = None
    threshold_per_cpu: float | None = Field(
        default=None, description="threshold as a multiple of the host's cpu_count"
    )
    for_seconds: float = Field(default=0.0, ge=0, le=_MAX_FOR)
    severity: Severity = "warning"
    hosts: list[Pattern] = Field(default_factory=list, max_length=100)
    tags: list[Annotated[str, Field(max_length=63)]] = Field(default_factory=list, max_length=50)
    labels: LabelMap = Field(default_factory=dict)
    notify: list[WebhookTarget] = Field(default_factory=list, max_length=10)
    enabled: bool = True
    investigate: bool = Field(
        default=False, description="when an alert fires: diagnostics, then the assistant"
    )


class RuleCreate(_RuleFields):
    """A new rule: a metric from the registry compared with a threshold for a while."""

    name: str = Field(pattern=RULE_NAME)
    metric: str = Field(max_length=64, description="a metric name from the registry")


class RuleUpdate(BaseModel):
    """Change some fields of a rule; setting one kind of threshold clears the other."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=RULE_NAME)
    metric: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=500)
    match_labels: LabelMap | None = None
    comparison: Comparison | None = None
    threshold: float | None = None
    threshold_per_cpu: float | None = None
    for_seconds: float | None = Field(default=None, ge=0, le=_MAX_FOR)
    severity: Severity | None = None
    hosts: list[Pattern] | None = Field(default=None, max_length=100)
    tags: list[Annotated[str, Field(max_length=63)]] | None = Field(default=None, max_length=50)
    labels: LabelMap | None = None
    notify: list[WebhookTarget] | None = Field(default=None, max_length=10)
    enabled: bool | None = None
    investigate: bool | None = None


class RulePublic(BaseModel):
    """A rule as clients see it (webhook URLs redacted)."""

    id: int
    name: str
    description: str | None
    metric: str
    match_labels: dict[str, str]
    comparison: str
    threshold: float | None
    threshold_per_cpu: float | None
    for_seconds: float
    severity: str
    hosts: list[str]
    tags: list[str]
    labels: dict[str, str]
    notify: list[WebhookTargetPublic]
    enabled: bool
    investigate: bool
    created_at: datetime
    updated_at: datetime


class AlertPublic(BaseModel):
    """One alert episode: its state, when it started, fired and resolved, and the values."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: Source
    rule: str = Field(validation_alias=AliasChoices("rule_name", "rule"))
    rule_id: int | None
    host: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    severity: Severity
    state: AlertState
    metric: str | None
    comparison: str | None
    threshold: float | None
    value: float | None
    value_started: float | None
    value_fired: float | None
    value_resolved: float | None
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    silenced_by: list[int] = Field(default_factory=list, description="active silences matching")


class DeliveryAttemptPublic(BaseModel):
    """One attempt to deliver a notification."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration: float


class NotificationPublic(BaseModel):
    """One notification of an alert to one target, with its delivery attempts."""

    id: int
    event: Literal["firing", "resolved"]
    target: WebhookTargetPublic
    status: Literal["pending", "delivered", "failed"]
    attempts: list[DeliveryAttemptPublic]
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None


class AlertDetail(AlertPublic):
    """An alert with its notifications."""

    notifications: list[NotificationPublic] = Field(default_factory=list)


class SilenceCreate(BaseModel):
    """Hold back notifications of matching alerts for a while (at least one matcher)."""

    model_config = ConfigDict(extra="forbid")

    rule: Pattern | None = Field(default=None, description="rule name glob")
    host: Pattern | None = Field(default=None, description="host name glob")
    labels: LabelMap = Field(default_factory=dict, description="label -> glob")
    starts_at: AwareTime = Field(default=None, description="default: now")
    ends_at: AwareTime = None
    duration: float | None = Field(default=None, gt=0, le=MAX_SILENCE, description="seconds")
    comment: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _complete(self) -> SilenceCreate:
        if self.rule is None and self.host is None and not self.labels:
            msg = "give at least one matcher: rule, host or labels"
            raise ValueError(msg)
        if (self.ends_at is None) == (self.duration is None):
            msg = "give exactly one of ends_at and duration"
            raise ValueError(msg)
        return self


class SilenceUpdate(BaseModel):
    """Change when a silence ends, or its comment."""

    model_config = ConfigDict(extra="forbid")

    ends_at: AwareTime = None
    duration: float | None = Field(
        default=None, gt=0, le=MAX_SILENCE, description="seconds from now"
    )
    comment: str | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceUpdate:
        if self.ends_at is not None and self.duration is not None:
            msg = "give at most one of ends_at and duration"
            raise ValueError(msg)
        return self


class SilencePublic(BaseModel):
    """A silence and whether it is active now."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule: str | None
    host: str | None
    labels: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    state: Literal["pending", "active", "expired"] = "active"


class AlertmanagerAlert(BaseModel):
    """One alert in an Alertmanager webhook (payload version 4)."""

    model_config = ConfigDict(populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(max_length=100)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=100)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL", max_length=4096)
    fingerprint: str | None = Field(default=None, max_length=64)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _check_aware(value)


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook body (``webhook_configs``), version 4."""

    model_config = ConfigDict(populate_by_name=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str | None = Field(default=None, max_length=500)
    group_key: str | None = Field(default=None, alias="groupKey", max_length=4096)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str | None = Field(default=None, alias="externalURL", max_length=4096)
    alerts: list[AlertmanagerAlert] = Field(max_length=1000)


class AlertmanagerReceipt(BaseModel):
    """What a webhook changed in tend's alert list."""

    received: int
    firing: int
    resolved: int


class EvaluationPublic(BaseModel):
    """The outcome of one evaluation."""

    rules: int
    series: int
    started: int
    fired: int
    resolved: int
    notifications: list[int]


def rule_public(rule: AlertRule) -> RulePublic:
    """Render a rule row with its webhook URLs redacted."""
    return RulePublic(
        id=rule.id,
        name=rule.name,
        description=rule.description,
        metric=rule.metric,
        match_labels=rule.match_labels,
        comparison=rule.comparison,
        threshold=rule.threshold,
        threshold_per_cpu=rule.threshold_per_cpu,
        for_seconds=rule.for_seconds,
        severity=rule.severity,
        hosts=rule.hosts,
        tags=rule.tags,
        labels=rule.labels,
        notify=[WebhookTargetPublic.redacted(t) for t in rule.notify],
        enabled=rule.enabled,
        investigate=rule.investigate,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )
