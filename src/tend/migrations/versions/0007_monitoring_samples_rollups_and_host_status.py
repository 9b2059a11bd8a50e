"""monitoring samples rollups and host status

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tend.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLLUPS = ("metric_rollups_1m", "metric_rollups_1h")


def _series_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("host", sa.String(length=63), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("ts", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("labels", sa.String(length=512), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "metric_samples",
        *_series_columns(),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("host", "metric", "ts", "labels", name=op.f("pk_metric_samples")),
    )
    with op.batch_alter_table("metric_samples", schema=None) as batch_op:
        batch_op.create_index("ix_metric_samples_ts", ["ts"], unique=False)

    for table in _ROLLUPS:
        op.create_table(
            table,
            *_series_columns(),
            sa.Column("value_avg", sa.Float(), nullable=False),
            sa.Column("value_max", sa.Float(), nullable=False),
            sa.Column("value_min", sa.Float(), nullable=False),
            sa.Column("sample_count", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("host", "metric", "ts", "labels", name=op.f(f"pk_{table}")),
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f"ix_{table}_ts", ["ts"], unique=False)

    op.create_table(
        "metric_rollup_progress",
        sa.Column("resolution", sa.String(length=8), nullable=False),
        sa.Column("done_until", tend.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("resolution", name=op.f("pk_metric_rollup_progress")),
    )
    op.create_table(
        "host_status",
        sa.Column("host", sa.String(length=63), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_attempt", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_success", tend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.CheckConstraint("state IN ('up', 'unreachable')", name=op.f("ck_host_status_state")),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_host_status")),
    )


def downgrade() -> None:
    op.drop_table("host_status")
    op.drop_table("metric_rollup_progress")
    for table in reversed(_ROLLUPS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_ts")
        op.drop_table(table)
    with op.batch_alter_table("metric_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_samples_ts")
    op.drop_table("metric_samples")
