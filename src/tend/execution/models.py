"""Database tables of the execution domain: approvals and the append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tend.db import Base, utcnow

APPROVAL_STATES = ("pending", "approved", "denied", "expired", "executed")


class Approval(Base):
    """A ``change`` request waiting for (or past) a human decision."""

    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'approved', 'denied', 'expired', 'executed')", name="status"
        ),
        Index("ix_approvals_status_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requester_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    requester: Mapped[str] = mapped_column(String(64))
    argv: Mapped[list[str]] = mapped_column(JSON)
    targets: Mapped[list[str]] = mapped_column(JSON)
    hosts: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    risk: Mapped[str] = mapped_column(String(16))
    policy_reason: Mapped[str] = mapped_column(Text)
    four_eyes: Mapped[bool] = mapped_column(default=False)
    timeout: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(32))
    results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class AuditRecord(Base):
    """One append-only audit entry; ``hash`` chains it to the record before it."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_host_created", "host", "created_at"),
        Index("ix_audit_log_actor_created", "actor", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    host: Mapped[str | None] = mapped_column(String(63))
    argv: Mapped[list[str] | None] = mapped_column(JSON)
    risk: Mapped[str | None] = mapped_column(String(16), index=True)
    detail: Mapped[str | None] = mapped_column(Text)
    approval_id: Mapped[str | None] = mapped_column(String(32), index=True)
    run_id: Mapped[str | None] = mapped_column(String(32), index=True)
    exit_code: Mapped[int | None]
    signal: Mapped[str | None] = mapped_column(String(16))
    duration: Mapped[float | None] = mapped_column(Float)
    stdout_bytes: Mapped[int | None]
    stderr_bytes: Mapped[int | None]
    stdout_sha256: Mapped[str | None] = mapped_column(String(64))
    stderr_sha256: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's end (last id, its hash, the count), sealed with a MAC so truncation shows."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
    mac: Mapped[str] = mapped_column(String(64))
