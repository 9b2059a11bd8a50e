"""Request and response models of the assistant's API (conversations, alert investigations)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

HostName = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
]

EVENT_TYPES = ("text", "tool_call", "tool_result", "approval_required", "usage", "error", "done")
"""The server-sent event names of a turn's stream, as the ``event:`` field carries them."""


class ConversationCreate(BaseModel):
    """Start a conversation, optionally about some hosts."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(
        default=None, max_length=200, description="default: the start of the first message"
    )
    hosts: list[HostName] = Field(
        default_factory=list, max_length=50, description="inventory hosts it is about"
    )


class ConversationCreated(BaseModel):
    """The new conversation's id."""

    id: str


class MessageCreate(BaseModel):
    """A message (question) to the assistant."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=20_000, pattern=r"\S")


class UsageTotals(BaseModel):
    """Model usage: requests, tokens, and the cost in US dollars when the price is known."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None


class ConversationSummary(BaseModel):
    """A conversation in a listing."""

    id: str
    title: str | None
    owner: str
    hosts: list[str]
    status: str = Field(description="idle, running (a turn is answering) or waiting (approvals)")
    turn_count: int
    usage: UsageTotals
    created_at: datetime
    updated_at: datetime


class EventPublic(BaseModel):
    """One event of the transcript, as streamed (``data`` is the event's JSON)."""

    seq: int
    turn: int
    type: str
    data: dict[str, Any]
    created_at: datetime


class TurnPublic(BaseModel):
    """One turn: the question (``null`` when it resumed after approvals), outcome and usage."""

    seq: int
    prompt: str | None
    status: str = Field(description="running, completed, waiting or failed")
    model: str
    usage: UsageTotals
    report: dict[str, Any] | None = Field(description="the investigation report, if completed")
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class ConversationApprovalPublic(BaseModel):
    """An approval a tool call of the conversation asked for, and its state now."""

    approval_id: str
    turn: int
    tool_call_id: str
    state: str = Field(description="pending, approved, executed, denied or expired")
    argv: list[str]
    hosts: list[str]
    decided_by: str | None
    decided_at: datetime | None


class ConversationTranscript(ConversationSummary):
    """The whole conversation: its turns, every event, and the approvals it asked for."""

    turns: list[TurnPublic]
    events: list[EventPublic]
    approvals: list[ConversationApprovalPublic]


class AlertInvestigationPublic(BaseModel):
    """What tend found when an alert fired: diagnostics first, then the assistant's report."""

    model_config = ConfigDict(from_attributes=True)

    alert_id: int
    status: str = Field(description="running, completed, diagnostics (no model) or failed")
    summary: str | None
    diagnostics: dict[str, Any] | None
    report: dict[str, Any] | None
    error: str | None
    model: str | None
    conversation_id: str | None
    started_at: datetime
    finished_at: datetime | None
