"""register the machine running tend as host 'local'

A fresh database always starts with the host ``local``; deleting it later keeps it deleted.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:20:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    now = datetime.now(UTC)
    conn = op.get_bind()
    exists = conn.execute(sa.text("SELECT 1 FROM hosts WHERE name = 'local'")).first()
    if exists is not None:
        return
    conn.execute(
        sa.text(
            "INSERT INTO hosts (name, address, port, transport, created_at, updated_at) "
            "VALUES ('local', 'localhost', 22, 'local', :now, :now)"
        ),
        {"now": now},
    )
    host_id = conn.execute(sa.text("SELECT id FROM hosts WHERE name = 'local'")).scalar_one()
    conn.execute(
        sa.text("INSERT INTO host_tags (host_id, tag) VALUES (:id, 'local')"), {"id": host_id}
    )


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM hosts WHERE name = 'local' AND transport = 'local'"))
