"""assistant output handles and usage

Kept tool outputs (paged by handle, compressed in chunks) and each user's daily assistant usage.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 18:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tend.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assistant_outputs",
        sa.Column("handle", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("total_lines", sa.BigInteger(), nullable=False),
        sa.Column("created_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_assistant_outputs_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("handle", name=op.f("pk_assistant_outputs")),
    )
    op.create_index(
        op.f("ix_assistant_outputs_user_id"), "assistant_outputs", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_assistant_outputs_conversation_id"),
        "assistant_outputs",
        ["conversation_id"],
        unique=False,
    )
    op.create_index(
        "ix_assistant_outputs_expires_at", "assistant_outputs", ["expires_at"], unique=False
    )
    op.create_table(
        "assistant_output_chunks",
        sa.Column("handle", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["handle"],
            ["assistant_outputs.handle"],
            name=op.f("fk_assistant_output_chunks_handle_assistant_outputs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("handle", "seq", name=op.f("pk_assistant_output_chunks")),
    )
    op.create_table(
        "assistant_usage_days",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("updated_at", tend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_assistant_usage_days_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_assistant_usage_days")),
    )


def downgrade() -> None:
    op.drop_table("assistant_usage_days")
    op.drop_table("assistant_output_chunks")
    op.drop_index("ix_assistant_outputs_expires_at", table_name="assistant_outputs")
    op.drop_index(op.f("ix_assistant_outputs_conversation_id"), table_name="assistant_outputs")
    op.drop_index(op.f("ix_assistant_outputs_user_id"), table_name="assistant_outputs")
    op.drop_table("assistant_outputs")
