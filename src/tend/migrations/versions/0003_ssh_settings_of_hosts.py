"""ssh settings of hosts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:51:10.079940
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_file", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("proxy_jump", sa.String(length=1024), nullable=True))
        batch_op.add_column(
            sa.Column("trust_on_first_use", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("host_key", sa.String(length=16384), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("host_key")
        batch_op.drop_column("trust_on_first_use")
        batch_op.drop_column("proxy_jump")
        batch_op.drop_column("key_file")
