"""Reading conversations back: listings, the whole transcript, and following a running turn.

``follow_log`` reads the event log from the database, so a client can follow a turn that runs in
another request, another replica or a worker (and re-attach after losing its connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tend.assistant.conversation_models import (
    Conversation,
    ConversationApproval,
    ConversationEvent,
    ConversationTurn,
)
from tend.assistant.conversations import event_data
from tend.assistant.schemas import (
    ConversationApprovalPublic,
    ConversationSummary,
    ConversationTranscript,
    EventPublic,
    TurnPublic,
    UsageTotals,
)
from tend.auth.models import User
from tend.db import Database, utcnow
from tend.execution.models import Approval

POLL_SECONDS = 0.25
PAGE = 500


def _usage(row: Conversation | ConversationTurn) -> UsageTotals:
    return UsageTotals(
        requests=row.requests,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost=row.cost,
    )


async def summaries(
    session: AsyncSession, conversations: Sequence[Conversation]
) -> list[ConversationSummary]:
    """Listing entries for conversations (with their owners' names)."""
    ids = {c.user_id for c in conversations}
    names: dict[int, str] = {}
    if ids:
        rows = await session.execute(select(User.id, User.username).where(User.id.in_(ids)))
        names = {int(row[0]): str(row[1]) for row in rows}
    return [
        ConversationSummary(
            id=c.id,
            title=c.title,
            owner=names.get(c.user_id, "?"),
            hosts=list(c.hosts),
            status=c.status,
            turn_count=c.turns,
            usage=_usage(c),
            created_at=c.created_at,
            updated_at=c.updated_at,
        )
        for c in conversations
    ]


async def transcript(session: AsyncSession, conversation: Conversation) -> ConversationTranscript:
    """The whole conversation: turns, every event, and the approvals with their state now."""
    [summary] = await summaries(session, [conversation])
    cid = conversation.id
    turns = (
        await session.execute(
            select(ConversationTurn)
            .where(ConversationTurn.conversation_id == cid)
            .order_by(ConversationTurn.seq)
        )
    ).scalars()
    events = (
        await session.execute(
            select(ConversationEvent)
            .where(ConversationEvent.conversation_id == cid)
            .order_by(ConversationEvent.seq)
        )
    ).scalars()
    approvals = await session.execute(
        select(ConversationApproval, Approval)
        .join(Approval, Approval.id == ConversationApproval.approval_id)
        .where(ConversationApproval.conversation_id == cid)
        .order_by(ConversationApproval.created_at)
    )
    return ConversationTranscript(
        **summary.model_dump(),
        turns=[
            TurnPublic(
                seq=t.seq,
                prompt=t.prompt,
                status=t.status,
                model=t.model,
                usage=_usage(t),
                report=t.report,
                error=t.error,
                started_at=t.started_at,
                finished_at=t.finished_at,
            )
            for t in turns
        ],
        events=[
            EventPublic(
                seq=e.seq, turn=e.turn, type=e.type, data=event_data(e), created_at=e.created_at
            )
            for e in events
        ],
        approvals=[
            ConversationApprovalPublic(
                approval_id=link.approval_id,
                turn=link.turn,
                tool_call_id=link.tool_call_id,
                state=approval.status,
                argv=list(approval.argv),
                hosts=list(approval.hosts),
                decided_by=approval.decided_by,
                decided_at=approval.decided_at,
            )
            for link, approval in approvals
        ],
    )


async def _state_now(session: AsyncSession, conversation_id: str) -> dict[str, Any]:
    """A ``done`` event describing where the conversation stands (no turn is running)."""
    conversation = await session.get(Conversation, conversation_id)
    last = await session.scalar(
        select(ConversationTurn.status)
        .where(ConversationTurn.conversation_id == conversation_id)
        .order_by(ConversationTurn.seq.desc())
        .limit(1)
    )
    pending = (
        await session.execute(
            select(ConversationApproval.approval_id)
            .join(Approval, Approval.id == ConversationApproval.approval_id)
            .where(
                ConversationApproval.conversation_id == conversation_id,
                Approval.status == "pending",
            )
        )
    ).scalars()
    waiting = conversation is not None and conversation.status == "waiting"
    status = "waiting" if waiting else (last if last in ("completed", "failed") else "completed")
    return {
        "type": "done",
        "status": status,
        "report": None,
        "pending_approvals": list(pending) if waiting else [],
        "usage": None,
    }


async def follow_log(
    database: Database, conversation_id: str, after: int, *, poll: float = POLL_SECONDS
) -> AsyncIterator[tuple[int | None, dict[str, Any]]]:
    """Replay the log after event ``after``, following it while a turn runs.

    Ends when no turn runs and every event was sent; when the last event sent was not a
    ``done``, a ``done`` describing the conversation's state ends the stream.

    Args:
        database: The database.
        conversation_id: The conversation.
        after: The last event number the client has (0: from the start).
        poll: Seconds between looks at the log while a turn runs.

    Yields:
        ``(seq, event data)``; ``seq`` is ``None`` for the closing ``done`` made up here.
    """
    last_type: str | None = None
    while True:
        async with database.session() as session:
            rows = list(
                (
                    await session.execute(
                        select(ConversationEvent)
                        .where(
                            ConversationEvent.conversation_id == conversation_id,
                            ConversationEvent.seq > after,
                        )
                        .order_by(ConversationEvent.seq)
                        .limit(PAGE)
                    )
                ).scalars()
            )
            conversation = await session.get(Conversation, conversation_id)
            running = (
                conversation is not None
                and conversation.status == "running"
                and conversation.lease_until is not None
                and conversation.lease_until > utcnow()
            )
            closing = None if rows or running else await _state_now(session, conversation_id)
        for row in rows:
            yield row.seq, event_data(row)
            after, last_type = row.seq, row.type
        if closing is not None:
            if last_type != "done":
                yield None, closing
            return
        if not rows:
            await asyncio.sleep(poll)
