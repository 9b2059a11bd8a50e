"""diagnostics baselines

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tend.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "diagnostics_baselines",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("analyzer", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name=op.f("fk_diagnostics_baselines_host_id_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("host_id", "analyzer", name=op.f("pk_diagnostics_baselines")),
    )


def downgrade() -> None:
    op.drop_table("diagnostics_baselines")
