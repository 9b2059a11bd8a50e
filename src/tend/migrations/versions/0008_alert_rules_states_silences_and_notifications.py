"""alert rules states silences and notifications

Creates the alerting tables and the default rules (a fresh database starts with them; deleting
one later keeps it deleted).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 18:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import tend.db
from tend.monitoring.alerts.defaults import DEFAULT_RULES

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "state IN ('pending', 'firing')"


def _create_rules() -> sa.Table:
    return op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("match_labels", sa.JSON(), nullable=False),
        sa.Column("comparison", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("threshold_per_cpu", sa.Float(), nullable=True),
        sa.Column("for_seconds", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("notify", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "comparison IN ('>', '>=', '<', '<=', '==', '!=')",
            name=op.f("ck_alert_rules_comparison"),
        ),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_alert_rules_severity")
        ),
        sa.CheckConstraint(
            "(threshold IS NULL) <> (threshold_per_cpu IS NULL)",
            name=op.f("ck_alert_rules_threshold"),
        ),
        sa.CheckConstraint("for_seconds >= 0", name=op.f("ck_alert_rules_for_seconds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_alert_rules_name")),
    )


def _create_alerts() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=True),
        sa.Column("comparison", sa.String(length=2), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("value_started", sa.Float(), nullable=True),
        sa.Column("value_fired", sa.Float(), nullable=True),
        sa.Column("value_resolved", sa.Float(), nullable=True),
        sa.Column("started_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", tend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", tend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_state", sa.String(length=8), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'firing', 'resolved')", name=op.f("ck_alerts_state")
        ),
        sa.CheckConstraint("source IN ('rule', 'alertmanager')", name=op.f("ck_alerts_source")),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_alerts_severity")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alerts_rule_id_alert_rules"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alerts_active_fingerprint",
            ["fingerprint"],
            unique=True,
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        )
        batch_op.create_index("ix_alerts_host_started", ["host", "started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_rule_id"), ["rule_id"], unique=False)
        batch_op.create_index("ix_alerts_state_started", ["state", "started_at"], unique=False)


def _create_silences() -> None:
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=True),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("starts_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_alert_silences_period")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_silences_ends_at"), ["ends_at"], unique=False)


def _create_notifications() -> None:
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=8), nullable=False),
        sa.Column("target_url", sa.String(length=2048), nullable=False),
        sa.Column("target_format", sa.String(length=8), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", tend.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "event IN ('firing', 'resolved')", name=op.f("ck_alert_notifications_event")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_alert_notifications_status"),
        ),
        sa.CheckConstraint(
            "target_format IN ('json', 'slack')", name=op.f("ck_alert_notifications_target_format")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_notifications_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
    )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_notifications_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(
            "ix_alert_notifications_status_created", ["status", "created_at"], unique=False
        )

    op.create_table(
        "alert_delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["alert_notifications.id"],
            name=op.f("fk_alert_delivery_attempts_notification_id_alert_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_delivery_attempts")),
    )
    with op.batch_alter_table("alert_delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_delivery_attempts_notification_id"),
            ["notification_id"],
            unique=False,
        )


def upgrade() -> None:
    rules = _create_rules()
    _create_alerts()
    _create_silences()
    _create_notifications()
    now = datetime.now(UTC)
    op.bulk_insert(
        rules, [{**rule, "created_at": now, "updated_at": now} for rule in DEFAULT_RULES]
    )


def downgrade() -> None:
    op.drop_table("alert_delivery_attempts")
    op.drop_table("alert_notifications")
    op.drop_table("alert_silences")
    op.drop_table("alerts")
    op.drop_table("alert_rules")
