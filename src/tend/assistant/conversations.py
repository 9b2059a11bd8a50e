"""Conversations: who owns them, who may continue them, their stored history and transcript.

A turn first *claims* its conversation (a conditional UPDATE, so two turns never run on one
conversation at once, whichever process they run in); the claim is a lease the running turn
renews, so a turn lost with its server frees the conversation about a minute later, and the
next claim records that turn as interrupted. The model's history is stored message by message
in pydantic-ai's JSON form and reloaded for every turn, so a conversation continues after a
restart exactly where it stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tend.assistant.conversation_models import (
    Conversation,
    ConversationApproval,
    ConversationEvent,
    ConversationMessage,
    ConversationTurn,
)
from tend.assistant.pending import pending_calls
from tend.auth.models import Role
from tend.db import Database, utcnow
from tend.errors import Conflict, NotFound, ValidationFailed
from tend.execution.models import Approval
from tend.execution.schemas import RunResponse
from tend.execution.targets import hosts_by_name

LEASE = timedelta(seconds=90)
"""How long a claim holds without renewal (a running turn renews it every ``RENEW_EVERY``)."""
RENEW_EVERY = 20.0
INTERRUPTED = "the turn was interrupted (its server stopped) before it finished"
TITLE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks at conversations: their own, or every one for an admin."""

    user_id: int
    role: Role

    @property
    def sees_all(self) -> bool:
        """Admins may read every conversation (never continue another user's)."""
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Claim:
    """A turn's hold on its conversation: the turn number and the next event number."""

    conversation_id: str
    turn: int
    next_seq: int
    hosts: tuple[str, ...]


async def create_conversation(
    session: AsyncSession,
    *,
    user_id: int,
    role: Role,
    title: str | None,
    hosts: Sequence[str],
) -> Conversation:
    """Create an empty conversation.

    Args:
        session: The session.
        user_id: The owner.
        role: The owner's role for this request (a later turn never acts with more).
        title: A title (default: the start of the first question).
        hosts: Inventory hosts the conversation is about.

    Returns:
        The conversation.

    Raises:
        ValidationFailed: A host is not in the inventory.
    """
    names = list(dict.fromkeys(hosts))
    if names:
        known = await hosts_by_name(session, names)
        missing = [name for name in names if name not in known]
        if missing:
            raise ValidationFailed(
                f"unknown host(s): {', '.join(missing)}; see GET /api/v1/hosts or tend hosts list"
            )
    now = utcnow()
    conversation = Conversation(
        id=uuid.uuid4().hex,
        user_id=user_id,
        title=title,
        hosts=names,
        status="idle",
        role=role.value,
        turns=0,
        requests=0,
        input_tokens=0,
        output_tokens=0,
        created_at=now,
        updated_at=now,
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def list_conversations(
    session: AsyncSession, viewer: Viewer, *, everyone: bool = False, limit: int = 100
) -> list[Conversation]:
    """List conversations, most recently active first.

    Args:
        session: The session.
        viewer: Who asks.
        everyone: Every user's (admins only; ignored for others).
        limit: At most this many.

    Returns:
        The conversations.
    """
    query = select(Conversation).order_by(Conversation.updated_at.desc()).limit(limit)
    if not (everyone and viewer.sees_all):
        query = query.where(Conversation.user_id == viewer.user_id)
    return list((await session.execute(query)).scalars())


async def get_conversation(
    session: AsyncSession, conversation_id: str, viewer: Viewer, *, to_continue: bool = False
) -> Conversation:
    """Return a conversation the viewer may see (or, with ``to_continue``, continue).

    Raises:
        NotFound: No such conversation, or it is someone else's (its existence is not told).
    """
    conversation = await session.get(Conversation, conversation_id)
    mine = conversation is not None and conversation.user_id == viewer.user_id
    if conversation is None or not (mine or (viewer.sees_all and not to_continue)):
        raise NotFound(f"conversation {conversation_id} not found")
    return conversation


async def claim(database: Database, conversation_id: str, role: Role) -> Claim:
    """Hold the conversation for a new turn.

    Args:
        database: The database.
        conversation_id: The conversation.
        role: The role the turn acts with (remembered for resumptions).

    Returns:
        The claim.

    Raises:
        Conflict: Another turn of this conversation is running.
        NotFound: The conversation is gone.
    """
    now = utcnow()
    async with database.session() as session:
        row = await session.get(Conversation, conversation_id)
        if row is None:
            raise NotFound(f"conversation {conversation_id} not found")
        changed = await session.execute(
            update(Conversation)
            .where(
                Conversation.id == conversation_id,
                or_(Conversation.status != "running", Conversation.lease_until < now),
            )
            .values(
                status="running",
                lease_until=now + LEASE,
                role=role.value,
                turns=Conversation.turns + 1,
                updated_at=now,
            )
            .returning(Conversation.turns, Conversation.hosts)
        )
        taken = changed.first()
        if taken is None:
            raise Conflict(
                f"conversation {conversation_id} is answering another message; wait for it "
                f"to finish (GET /api/v1/conversations/{conversation_id}/events follows it)"
            )
        turn, hosts = int(taken[0]), tuple(taken[1])
        next_seq = await _next_event_seq(session, conversation_id)
        next_seq = await _close_interrupted(session, conversation_id, next_seq, now)
    return Claim(conversation_id, turn, next_seq, hosts)


async def _next_event_seq(session: AsyncSession, conversation_id: str) -> int:
    last = await session.scalar(
        select(func.max(ConversationEvent.seq)).where(
            ConversationEvent.conversation_id == conversation_id
        )
    )
    return int(last or 0) + 1


async def _close_interrupted(
    session: AsyncSession, conversation_id: str, seq: int, now: datetime
) -> int:
    """Mark a turn left ``running`` by a lost server as failed, in its turn row and log."""
    lost = (
        await session.execute(
            select(ConversationTurn).where(
                ConversationTurn.conversation_id == conversation_id,
                ConversationTurn.status == "running",
            )
        )
    ).scalars()
    for turn in lost:
        turn.status, turn.error, turn.finished_at = "failed", INTERRUPTED, now
        for kind, data in (
            ("error", {"type": "error", "kind": "internal", "message": INTERRUPTED}),
            ("done", {"type": "done", "status": "failed", "pending_approvals": []}),
        ):
            session.add(
                ConversationEvent(
                    conversation_id=conversation_id,
                    seq=seq,
                    turn=turn.seq,
                    type=kind,
                    data={**data, "report": None, "usage": None} if kind == "done" else data,
                    created_at=now,
                )
            )
            seq += 1
    return seq


async def renew(database: Database, conversation_id: str) -> None:
    """Extend a running turn's hold on its conversation."""
    async with database.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.status == "running")
            .values(lease_until=utcnow() + LEASE)
        )


async def load_history(database: Database, conversation_id: str) -> list[ModelMessage]:
    """The conversation's model history, as pydantic-ai messages, oldest first."""
    async with database.session() as session:
        rows = (
            await session.execute(
                select(ConversationMessage.data)
                .where(ConversationMessage.conversation_id == conversation_id)
                .order_by(ConversationMessage.seq)
            )
        ).scalars()
        data = list(rows)
    return list(ModelMessagesTypeAdapter.validate_python(data))


def store_history(
    session: AsyncSession,
    conversation_id: str,
    turn: int,
    messages: Sequence[ModelMessage],
    start: int,
) -> None:
    """Append ``messages[start:]`` to the stored history (rows from ``start`` on are replaced).

    Args:
        session: The session of the turn's final write.
        conversation_id: The conversation.
        turn: The turn that produced them.
        messages: The whole history after the turn.
        start: Index of the first new message.
    """
    new = list(messages[start:])
    if not new:
        return
    data = ModelMessagesTypeAdapter.dump_python(new, mode="json")
    now = utcnow()
    session.add_all(
        ConversationMessage(
            conversation_id=conversation_id,
            seq=start + offset,
            turn=turn,
            kind=message.kind,
            data=item,
            created_at=now,
        )
        for offset, (message, item) in enumerate(zip(new, data, strict=True))
    )


async def clear_history_from(session: AsyncSession, conversation_id: str, start: int) -> None:
    """Drop stored messages from index ``start`` on (before writing a turn's new ones)."""
    await session.execute(
        delete(ConversationMessage).where(
            ConversationMessage.conversation_id == conversation_id,
            ConversationMessage.seq >= start,
        )
    )


async def approved_runs(database: Database, conversation_id: str) -> dict[str, RunResponse]:
    """What approved commands of the conversation printed, by approval id (for the model)."""
    async with database.session() as session:
        rows = (
            await session.execute(
                select(ConversationApproval.approval_id, ConversationApproval.run).where(
                    ConversationApproval.conversation_id == conversation_id,
                    ConversationApproval.run.is_not(None),
                )
            )
        ).all()
    return {approval_id: RunResponse.model_validate(run) for approval_id, run in rows}


async def decided_waiting(database: Database, conversation_id: str) -> list[str]:
    """Approvals the conversation's waiting tool calls are answered by now (decided, expired).

    Returns:
        Their ids; empty when the conversation does not wait, or nothing new would reach the
        model.
    """
    async with database.session() as session:
        status = await session.scalar(
            select(Conversation.status).where(Conversation.id == conversation_id)
        )
    if status != "waiting":
        return []
    waiting = pending_calls(await load_history(database, conversation_id))
    ids = [str(c.approval["approval_id"]) for c in waiting if c.approval]
    if not ids:
        return []
    async with database.session() as session:
        rows = await session.execute(
            select(Approval.id, Approval.status, Approval.expires_at).where(Approval.id.in_(ids))
        )
        now = utcnow()
        return [
            approval_id
            for approval_id, state, expires in rows
            if state != "pending" or expires <= now
        ]


async def link_approval(
    session: AsyncSession, conversation_id: str, turn: int, tool_call_id: str, approval_id: str
) -> None:
    """Remember that a tool call of the conversation waits for ``approval_id``."""
    if await session.get(ConversationApproval, approval_id) is None:
        session.add(
            ConversationApproval(
                approval_id=approval_id,
                conversation_id=conversation_id,
                turn=turn,
                tool_call_id=tool_call_id,
                state="pending",
                created_at=utcnow(),
            )
        )


async def settle_approvals(session: AsyncSession, conversation_id: str) -> None:
    """Copy the current state of the conversation's pending approvals from the approvals."""
    rows = await session.execute(
        select(ConversationApproval, Approval.status, Approval.decided_at)
        .join(Approval, ConversationApproval.approval_id == Approval.id)
        .where(
            ConversationApproval.conversation_id == conversation_id,
            ConversationApproval.state == "pending",
        )
    )
    for link, state, decided_at in rows:
        if state != "pending":
            link.state, link.decided_at = state, decided_at


def event_data(row: ConversationEvent) -> dict[str, Any]:
    """An event of the log as the stream sent it."""
    return {**row.data, "type": row.type}
