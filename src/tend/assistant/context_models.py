"""Tables of the assistant's context management: kept tool outputs and daily usage per user."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from tend.db import Base, utcnow


class AssistantOutput(Base):
    """A whole tool output kept so the model can page through what was cut from its context."""

    __tablename__ = "assistant_outputs"
    __table_args__ = (Index("ix_assistant_outputs_expires_at", "expires_at"),)

    handle: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # No foreign key: conversations live in a later migration and may be kept elsewhere.
    conversation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    label: Mapped[str | None] = mapped_column(String(128))
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    total_lines: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class AssistantOutputChunk(Base):
    """One zlib-compressed slice of a kept output (``size`` bytes from byte ``start``)."""

    __tablename__ = "assistant_output_chunks"

    handle: Mapped[str] = mapped_column(
        ForeignKey("assistant_outputs.handle", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    start: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AssistantUsageDay(Base):
    """What one user's assistant runs used on one UTC day (tokens, requests, cost when known)."""

    __tablename__ = "assistant_usage_days"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    requests: Mapped[int] = mapped_column(default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
