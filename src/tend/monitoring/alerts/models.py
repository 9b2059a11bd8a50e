"""Database tables of alerting: rules, alerts (one row per episode), silences, notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tend.db import Base, TimestampMixin, utcnow

COMPARISONS = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES = ("info", "warning", "critical")
ALERT_STATES = ("pending", "firing", "resolved")
ACTIVE_STATES = ("pending", "firing")
SOURCES = ("rule", "alertmanager")
NOTIFICATION_STATES = ("pending", "delivered", "failed")

_ACTIVE = "state IN ('pending', 'firing')"


class AlertRule(TimestampMixin, Base):
    """A condition on one metric that raises an alert per (host, label set) while it holds.

    Exactly one of ``threshold`` and ``threshold_per_cpu`` is set; the second is multiplied by
    the host's ``cpu_count`` (load rules).
    """

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint("comparison IN ('>', '>=', '<', '<=', '==', '!=')", name="comparison"),
        CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity"),
        CheckConstraint("(threshold IS NULL) <> (threshold_per_cpu IS NULL)", name="threshold"),
        CheckConstraint("for_seconds >= 0", name="for_seconds"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(String(64))
    match_labels: Mapped[dict[str, str]] = mapped_column(JSON)
    comparison: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float | None] = mapped_column(Float)
    threshold_per_cpu: Mapped[float | None] = mapped_column(Float)
    for_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    severity: Mapped[str] = mapped_column(String(8))
    hosts: Mapped[list[str]] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    notify: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Run an investigation (diagnostics, then the assistant) when an alert of this rule fires.
    investigate: Mapped[bool] = mapped_column(default=False)


class Alert(Base):
    """One episode of one alert: from pending (or firing) to resolved, with the values seen.

    ``fingerprint`` names the (rule, host, label set), or Alertmanager's fingerprint; at most
    one episode per fingerprint is active at a time.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'firing', 'resolved')", name="state"),
        CheckConstraint("source IN ('rule', 'alertmanager')", name="source"),
        CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity"),
        Index(
            "ix_alerts_active_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("ix_alerts_state_started", "state", "started_at"),
        Index("ix_alerts_host_started", "host", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="rule")
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="SET NULL"), index=True
    )
    rule_name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str | None] = mapped_column(String(253))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(8))
    metric: Mapped[str | None] = mapped_column(String(64))
    comparison: Mapped[str | None] = mapped_column(String(2))
    threshold: Mapped[float | None] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    value_started: Mapped[float | None] = mapped_column(Float)
    value_fired: Mapped[float | None] = mapped_column(Float)
    value_resolved: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The last state receivers were told about ("firing" / "resolved"); silences hold it back.
    notified_state: Mapped[str | None] = mapped_column(String(8))


class AlertSilence(Base):
    """Holds back notifications of matching alerts between ``starts_at`` and ``ends_at``.

    ``rule`` and ``host`` are glob patterns; ``labels`` maps label names to glob patterns.
    """

    __tablename__ = "alert_silences"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str | None] = mapped_column(String(200))
    host: Mapped[str | None] = mapped_column(String(253))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertNotification(Base):
    """One message about one alert event (firing / resolved) to one webhook target."""

    __tablename__ = "alert_notifications"
    __table_args__ = (
        CheckConstraint("event IN ('firing', 'resolved')", name="event"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        CheckConstraint("target_format IN ('json', 'slack')", name="target_format"),
        Index("ix_alert_notifications_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(8))
    target_url: Mapped[str] = mapped_column(String(2048))
    target_format: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class AlertDeliveryAttempt(Base):
    """One attempt to deliver a notification: the HTTP status or the error, and how long."""

    __tablename__ = "alert_delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("alert_notifications.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[float] = mapped_column(Float)
