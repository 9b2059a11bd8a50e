"""assistant conversations

Conversations with their turns, message history, event log and linked approvals; alert
investigations; and the ``investigate`` option of alert rules.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 18:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tend.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONVERSATIONS = "assistant_conversations"


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, tend.db.UTCDateTime(timezone=True), nullable=nullable)


def _conversation_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["conversation_id"],
        [f"{_CONVERSATIONS}.id"],
        name=op.f(f"fk_{table}_conversation_id_{_CONVERSATIONS}"),
        ondelete="CASCADE",
    )


def _usage_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        _CONVERSATIONS,
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        _when("lease_until", nullable=True),
        sa.Column("pseudonyms", sa.JSON(), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        *_usage_columns(),
        _when("created_at"),
        _when("updated_at"),
        sa.CheckConstraint(
            "role IN ('viewer', 'operator', 'admin')", name=op.f(f"ck_{_CONVERSATIONS}_role")
        ),
        sa.CheckConstraint(
            "status IN ('idle', 'running', 'waiting')", name=op.f(f"ck_{_CONVERSATIONS}_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f(f"fk_{_CONVERSATIONS}_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_CONVERSATIONS}")),
    )
    op.create_index(op.f(f"ix_{_CONVERSATIONS}_user_id"), _CONVERSATIONS, ["user_id"], unique=False)
    op.create_table(
        "assistant_turns",
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        *_usage_columns(),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _when("started_at"),
        _when("finished_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'waiting', 'failed')",
            name=op.f("ck_assistant_turns_status"),
        ),
        _conversation_fk("assistant_turns"),
        sa.PrimaryKeyConstraint("conversation_id", "seq", name=op.f("pk_assistant_turns")),
    )
    for table, kind in (("assistant_messages", "kind"), ("assistant_events", "type")):
        op.create_table(
            table,
            sa.Column("conversation_id", sa.String(length=32), nullable=False),
            sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("turn", sa.Integer(), nullable=False),
            sa.Column(kind, sa.String(length=10 if kind == "kind" else 20), nullable=False),
            sa.Column("data", sa.JSON(), nullable=False),
            _when("created_at"),
            _conversation_fk(table),
            sa.PrimaryKeyConstraint("conversation_id", "seq", name=op.f(f"pk_{table}")),
        )
    op.create_table(
        "assistant_approvals",
        sa.Column("approval_id", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("tool_call_id", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("run", sa.JSON(), nullable=True),
        _when("created_at"),
        _when("decided_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["approvals.id"],
            name=op.f("fk_assistant_approvals_approval_id_approvals"),
            ondelete="CASCADE",
        ),
        _conversation_fk("assistant_approvals"),
        sa.PrimaryKeyConstraint("approval_id", name=op.f("pk_assistant_approvals")),
    )
    op.create_index(
        op.f("ix_assistant_approvals_conversation_id"),
        "assistant_approvals",
        ["conversation_id"],
        unique=False,
    )
    op.create_table(
        "alert_investigations",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("diagnostics", sa.JSON(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        _when("started_at"),
        _when("finished_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'diagnostics', 'failed')",
            name=op.f("ck_alert_investigations_status"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_investigations_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            [f"{_CONVERSATIONS}.id"],
            name=op.f(f"fk_alert_investigations_conversation_id_{_CONVERSATIONS}"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alert_investigations")),
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("investigate", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_column("investigate")
    op.drop_table("alert_investigations")
    op.drop_index(op.f("ix_assistant_approvals_conversation_id"), table_name="assistant_approvals")
    op.drop_table("assistant_approvals")
    op.drop_table("assistant_events")
    op.drop_table("assistant_messages")
    op.drop_table("assistant_turns")
    op.drop_index(op.f(f"ix_{_CONVERSATIONS}_user_id"), table_name=_CONVERSATIONS)
    op.drop_table(_CONVERSATIONS)
