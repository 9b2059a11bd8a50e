"""Tables of assistant conversations: turns, the model's history, the event log, approvals.

A conversation belongs to one user. Each turn (a question, or the resumption of calls that
waited for approvals) appends to ``assistant_messages`` — pydantic-ai's message history in its
JSON form, one row per message, so a later turn (also after a restart) continues from it — and
to ``assistant_events``, the transcript a user reads (the same events the stream sent). Alert
investigations attach their report to the alert in ``alert_investigations``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tend.db import Base, utcnow

CONVERSATION_STATES = ("idle", "running", "waiting")
TURN_STATES = ("running", "completed", "waiting", "failed")


class Conversation(Base):
    """A user's conversation with the assistant, and who may continue it.

    ``status`` is ``running`` while a turn holds it (until ``lease_until``, renewed while the
    turn runs, so a turn lost with its server frees the conversation soon after), ``waiting``
    while tool calls wait for approvals, else ``idle``. ``role`` is the role the last turn acted
    with (a resumption never acts with more).
    """

    __tablename__ = "assistant_conversations"
    __table_args__ = (
        CheckConstraint("status IN ('idle', 'running', 'waiting')", name="status"),
        CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str | None] = mapped_column(String(200))
    hosts: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="idle")
    role: Mapped[str] = mapped_column(String(16))
    lease_until: Mapped[datetime | None]
    # With TEND_ASSISTANT_ANONYMISE: the pseudonyms given so far (original -> pseudonym), kept
    # so the model's earlier answers in the history still mean the same hosts.
    pseudonyms: Mapped[dict[str, str] | None] = mapped_column(JSON)
    turns: Mapped[int] = mapped_column(default=0)
    requests: Mapped[int] = mapped_column(default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationTurn(Base):
    """One turn: the question (``None`` when it resumed waiting calls), outcome and usage."""

    __tablename__ = "assistant_turns"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed', 'waiting', 'failed')", name="status"),
    )

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    prompt: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    model: Mapped[str] = mapped_column(String(200))
    requests: Mapped[int] = mapped_column(default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float | None] = mapped_column(Float)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ConversationMessage(Base):
    """One pydantic-ai message of the history, in its JSON form (``ModelMessagesTypeAdapter``)."""

    __tablename__ = "assistant_messages"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    turn: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))  # "request" | "response"
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationEvent(Base):
    """One event of the transcript, as streamed (text deltas joined per model response)."""

    __tablename__ = "assistant_events"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    turn: Mapped[int]
    type: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationApproval(Base):
    """An approval a tool call of a conversation waits for, and (once run) what the run printed.

    ``run`` holds the run's results as the approver received them, so the resumed turn shows
    the model the command's output, not only its exit codes.
    """

    __tablename__ = "assistant_approvals"

    approval_id: Mapped[str] = mapped_column(
        ForeignKey("approvals.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE"), index=True
    )
    turn: Mapped[int]
    tool_call_id: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    run: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class AlertInvestigation(Base):
    """What tend found when an alert fired: diagnostics, then the assistant's report.

    ``status`` is ``running``, ``completed`` (with a report), ``diagnostics`` (no model
    configured, or the model failed: diagnostics alone, ``error`` says why) or ``failed``.
    """

    __tablename__ = "alert_investigations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'completed', 'diagnostics', 'failed')", name="status"
        ),
    )

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(12))
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="SET NULL")
    )
    summary: Mapped[str | None] = mapped_column(Text)
    diagnostics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
