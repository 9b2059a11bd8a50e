"""HTTP endpoints of the assistant: conversations (answers stream as server-sent events).

A message starts a turn that runs in the background and streams its events (``text``,
``tool_call``, ``tool_result``, ``approval_required``, ``usage``, ``error``, ``done``) to the
client; the turn does not depend on the client: when it disconnects, the turn still ends and is
stored, and ``GET .../events?after=N`` replays and follows the log from event ``N``. Every
signed-in user may converse; a user sees only their own conversations (admins may read all).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from pydantic_ai.models import Model

from tend.assistant.conversation_models import AlertInvestigation
from tend.assistant.conversations import (
    INTERRUPTED,
    claim,
    create_conversation,
    decided_waiting,
    get_conversation,
    list_conversations,
)
from tend.assistant.conversations import (
    Viewer as ConversationViewer,
)
from tend.assistant.events import AssistantEvent, DoneEvent, ErrorEvent
from tend.assistant.llm import aclose_model, build_model
from tend.assistant.schemas import (
    AlertInvestigationPublic,
    ConversationCreate,
    ConversationCreated,
    ConversationSummary,
    ConversationTranscript,
    MessageCreate,
)
from tend.assistant.transcripts import follow_log, summaries, transcript
from tend.assistant.turns import limiter_for, run_turn
from tend.auth.deps import Viewer
from tend.auth.service import Principal
from tend.context import AppContext, ContextDep, SessionDep
from tend.errors import Conflict, ErrorBody, NotFound
from tend.execution.service import Caller

router = APIRouter(tags=["assistant"])

_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "server-sent events: text, tool_call, tool_result, approval_required, "
        "usage, error, then done",
    },
    404: {"model": ErrorBody, "description": "no such conversation (or not yours)"},
    409: {"model": ErrorBody, "description": "another message of it is being answered"},
    429: {"model": ErrorBody, "description": "your daily assistant limit is used up"},
    503: {"model": ErrorBody, "description": "no model configured (the detail says how)"},
}
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_RUNNING: set[asyncio.Task[None]] = set()  # strong references: a turn outlives its request
Queue = asyncio.Queue[tuple[int | None, AssistantEvent | None]]


def _viewer(principal: Principal) -> ConversationViewer:
    return ConversationViewer(user_id=principal.user.id, role=principal.role)


def _caller(principal: Principal) -> Caller:
    return Caller(user_id=principal.user.id, username=principal.user.username, role=principal.role)


def sse_frame(seq: int | None, data: dict[str, Any]) -> bytes:
    """One server-sent event: ``id`` (the log's number, when it has one), ``event``, ``data``."""
    head = f"id: {seq}\n" if seq is not None else ""
    body = json.dumps(data, separators=(",", ":"), default=str)
    return f"{head}event: {data['type']}\ndata: {body}\n\n".encode()


async def events_of(queue: Queue) -> AsyncIterator[tuple[int | None, AssistantEvent]]:
    """Read a live turn's events from its queue until ``done`` (or the turn's task ended)."""
    while True:
        seq, event = await queue.get()
        if event is None:  # the task ended without a done event
            yield None, ErrorEvent(kind="internal", message=INTERRUPTED)
            yield None, DoneEvent(status="failed")
            return
        yield seq, event
        if isinstance(event, DoneEvent):
            return


async def _live_frames(queue: Queue) -> AsyncIterator[bytes]:
    async for seq, event in events_of(queue):
        yield sse_frame(seq, event.model_dump(mode="json"))


async def _logged_frames(
    context: AppContext, conversation_id: str, after: int
) -> AsyncIterator[bytes]:
    async for seq, data in follow_log(context.database, conversation_id, after):
        yield sse_frame(seq, data)


async def _run_in_background(
    context: AppContext, conversation_id: str, caller: Caller, prompt: str | None, model: Model
) -> Queue:
    """Claim the conversation and start the turn; its events arrive on the returned queue."""
    try:
        held = await claim(context.database, conversation_id, caller.role)
    except BaseException:
        await aclose_model(model)
        raise
    queue: Queue = asyncio.Queue()

    async def turn() -> None:
        try:
            await run_turn(
                context,
                held,
                caller,
                prompt,
                model,
                listener=lambda seq, event: queue.put_nowait((seq, event)),
            )
        finally:
            await aclose_model(model)
            queue.put_nowait((None, None))

    task = asyncio.create_task(turn(), name=f"assistant-turn-{conversation_id}")
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return queue


def _stream(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(frames, media_type="text/event-stream", headers=_SSE_HEADERS)


@router.post(
    "/conversations", status_code=status.HTTP_201_CREATED, response_model=ConversationCreated
)
async def create(
    body: ConversationCreate, principal: Viewer, session: SessionDep
) -> ConversationCreated:
    """Start a conversation with the assistant (422 for a host not in the inventory)."""
    conversation = await create_conversation(
        session,
        user_id=principal.user.id,
        role=principal.role,
        title=body.title,
        hosts=body.hosts,
    )
    return ConversationCreated(id=conversation.id)


@router.get("/conversations", response_model=list[ConversationSummary])
async def list_all(
    principal: Viewer,
    session: SessionDep,
    everyone: Annotated[bool, Query(alias="all", description="every user's (admins only)")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ConversationSummary]:
    """List your conversations, most recently active first."""
    found = await list_conversations(session, _viewer(principal), everyone=everyone, limit=limit)
    return await summaries(session, found)


@router.get("/conversations/{conversation_id}", response_model=ConversationTranscript)
async def show(
    conversation_id: str, principal: Viewer, session: SessionDep
) -> ConversationTranscript:
    """The whole conversation: turns with their reports and usage, every event, approvals."""
    conversation = await get_conversation(session, conversation_id, _viewer(principal))
    return await transcript(session, conversation)


@router.post("/conversations/{conversation_id}/messages", responses=_STREAM_RESPONSES)
async def post_message(
    conversation_id: str, body: MessageCreate, principal: Viewer, context: ContextDep
) -> StreamingResponse:
    """Ask the assistant; its answer streams as server-sent events until ``done``.

    Tool calls waiting for approvals that were decided meanwhile are answered first.
    """
    async with context.database.session() as session:
        await get_conversation(session, conversation_id, _viewer(principal), to_continue=True)
    await limiter_for(context.settings, context.database).check(principal.user.id)  # 429
    model = build_model(context.settings)  # 503 before anything streams
    queue = await _run_in_background(
        context, conversation_id, _caller(principal), body.content, model
    )
    return _stream(_live_frames(queue))


@router.post("/conversations/{conversation_id}/resume", responses=_STREAM_RESPONSES)
async def resume(
    conversation_id: str,
    principal: Viewer,
    context: ContextDep,
    after: Annotated[int, Query(ge=0, description="the last event number you have")] = 0,
) -> StreamingResponse:
    """Continue after approvals were decided, streaming the turn (or follow it if it runs).

    With nothing to resume, the events after ``after`` are sent and a ``done`` tells the
    conversation's state (e.g. still ``waiting``).
    """
    async with context.database.session() as session:
        await get_conversation(session, conversation_id, _viewer(principal), to_continue=True)
    if await decided_waiting(context.database, conversation_id):
        model = build_model(context.settings)
        try:
            queue = await _run_in_background(
                context, conversation_id, _caller(principal), None, model
            )
        except Conflict:  # the resume job got there first: follow it
            pass
        else:
            return _stream(_live_frames(queue))
    return _stream(_logged_frames(context, conversation_id, after))


@router.get("/conversations/{conversation_id}/events", responses=_STREAM_RESPONSES)
async def follow(
    conversation_id: str,
    principal: Viewer,
    context: ContextDep,
    after: Annotated[int, Query(ge=0, description="the last event number you have")] = 0,
) -> StreamingResponse:
    """Replay the conversation's events after ``after`` and follow a running turn to its end."""
    async with context.database.session() as session:
        await get_conversation(session, conversation_id, _viewer(principal))
    return _stream(_logged_frames(context, conversation_id, after))


@router.get(
    "/alerts/{alert_id}/investigation",
    response_model=AlertInvestigationPublic,
    tags=["alerts"],
)
async def alert_investigation(
    alert_id: int, _: Viewer, session: SessionDep
) -> AlertInvestigationPublic:
    """What tend found when the alert fired (rules with ``investigate: true``)."""
    found = await session.get(AlertInvestigation, alert_id)
    if found is None:
        raise NotFound(f"alert {alert_id} has no investigation")
    return AlertInvestigationPublic.model_validate(found)
