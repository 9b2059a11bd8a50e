"""One turn of a conversation, run to the end and written down as it goes.

``run_turn`` runs the agent's one streaming loop (:func:`tend.assistant.agent.investigate`) on
a claimed conversation: every event goes to the conversation's event log (text deltas joined
per model response) and to an optional listener (a live stream), each approval a tool call waits
for is linked to the conversation, and at the end the new messages, the turn's outcome and its
usage are stored in one transaction. A turn does not depend on anyone listening: the HTTP
stream's client may go away, the turn still ends and is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from sqlalchemy import func, select, update

from tend.assistant.agent import build_agent, investigate, model_label
from tend.assistant.conversation_models import Conversation, ConversationEvent, ConversationTurn
from tend.assistant.conversations import (
    INTERRUPTED,
    RENEW_EVERY,
    Claim,
    approved_runs,
    clear_history_from,
    decided_waiting,
    link_approval,
    load_history,
    renew,
    settle_approvals,
    store_history,
)
from tend.assistant.deps import AssistantDeps
from tend.assistant.events import (
    ApprovalRequiredEvent,
    AssistantEvent,
    DoneEvent,
    ErrorEvent,
    TextEvent,
    ToolResultEvent,
    UsageEvent,
)
from tend.assistant.limits import UsageLimiter
from tend.assistant.llm import model_context_tokens
from tend.assistant.outcomes import RunLimits
from tend.assistant.outputs import OutputStore
from tend.assistant.pending import pending_calls
from tend.assistant.redact import Redactor
from tend.assistant.tokens import ContextBudget
from tend.db import Database, utcnow
from tend.errors import ServiceUnavailable
from tend.execution.service import Caller
from tend.hosts.models import Host

if TYPE_CHECKING:
    from tend.context import AppContext
    from tend.settings import Settings

logger = logging.getLogger("tend.assistant")

Listener = Callable[[int | None, AssistantEvent], None]
"""Receives each event as it happens, with its number in the log (``None`` for text deltas)."""

TEXT_FLUSH_CHARS = 2000
"""Text is written to the log at the next other event, or once this much has gathered."""
MAX_STORED_RESULT = 64 * 1024
"""A tool result larger than this (as JSON) is kept in the log as a preview."""


def budget_for(settings: Settings, model: Model) -> ContextBudget:
    """The context budget of the model serving a turn."""
    return ContextBudget.from_settings(settings, model_context_tokens(settings, model_label(model)))


def limiter_for(settings: Settings, database: Database) -> UsageLimiter:
    """Per-user daily usage: recorded always, limited when ``TEND_ASSISTANT_DAILY_*`` is set."""
    return UsageLimiter.from_settings(database, settings)


async def redactor_for(app: AppContext, conversation_id: str) -> Redactor:
    """The conversation's redactor: secrets always; hosts too with ``assistant_anonymise``.

    The pseudonyms given in earlier turns are reused, so the model's earlier answers in the
    history keep meaning the same hosts.
    """
    if not app.settings.assistant_anonymise:
        return Redactor()
    async with app.database.session() as session:
        rows = (await session.execute(select(Host.name, Host.address))).all()
        mapping = await session.scalar(
            select(Conversation.pseudonyms).where(Conversation.id == conversation_id)
        )
    known = [value for row in rows for value in row if value]
    return Redactor(anonymise=True, known_hosts=known, mapping=mapping or {})


def _stored(event: AssistantEvent) -> dict[str, Any]:
    data: dict[str, Any] = event.model_dump(mode="json")
    if isinstance(event, ToolResultEvent):
        text = ToolResultEvent.model_validate(data).model_dump_json()
        if len(text) > MAX_STORED_RESULT:
            data["result"] = {
                "status": event.status,
                "stored_preview": text[:MAX_STORED_RESULT],
                "stored_bytes": len(text),
            }
    return data


class EventLog:
    """Writes one turn's events to the conversation's log and hands them to a listener."""

    def __init__(self, database: Database, claim: Claim, listener: Listener | None) -> None:
        """Start a turn's log at the claim's next event number."""
        self.database = database
        self.claim = claim
        self.listener = listener
        self.usage: UsageEvent | None = None
        self.redactor: Redactor | None = None
        self.history: list[ModelMessage] = []  # as the turn found it
        self._seq = claim.next_seq
        self._text: list[str] = []
        self._text_chars = 0

    def tell(self, seq: int | None, event: AssistantEvent) -> None:
        """Hand an event to the listener (one that fails is dropped, the turn goes on)."""
        if self.listener is None:
            return
        try:
            self.listener(seq, event)
        except Exception:  # a listener's failure must not stop the turn
            logger.exception("assistant event listener failed")
            self.listener = None

    def _row(self, kind: str, data: dict[str, Any]) -> ConversationEvent:
        row = ConversationEvent(
            conversation_id=self.claim.conversation_id,
            seq=self._seq,
            turn=self.claim.turn,
            type=kind,
            data=data,
            created_at=utcnow(),
        )
        self._seq += 1
        return row

    def pending_rows(self) -> list[ConversationEvent]:
        """The gathered text as a log row (at most one), emptying the buffer."""
        if not self._text:
            return []
        row = self._row("text", {"type": "text", "delta": "".join(self._text)})
        self._text, self._text_chars = [], 0
        return [row]

    async def add(self, event: AssistantEvent) -> None:
        """Log one event (text is gathered first) and tell the listener."""
        if isinstance(event, TextEvent):
            self.tell(None, event)
            self._text.append(event.delta)
            self._text_chars += len(event.delta)
            if self._text_chars >= TEXT_FLUSH_CHARS:
                async with self.database.session() as session:
                    session.add_all(self.pending_rows())
            return
        if isinstance(event, UsageEvent):
            self.usage = event
        async with self.database.session() as session:
            session.add_all(self.pending_rows())
            row = self._row(event.type, _stored(event))
            session.add(row)
            if isinstance(event, ApprovalRequiredEvent):
                await link_approval(
                    session,
                    self.claim.conversation_id,
                    self.claim.turn,
                    event.tool_call_id,
                    event.approval_id,
                )
        self.tell(row.seq, event)

    def done_row(self, done: DoneEvent) -> ConversationEvent:
        """The ``done`` event's row (written with the turn's outcome)."""
        return self._row("done", _stored(done))


async def _start(database: Database, claim: Claim, prompt: str | None, model: str) -> None:
    async with database.session() as session:
        session.add(
            ConversationTurn(
                conversation_id=claim.conversation_id,
                seq=claim.turn,
                prompt=prompt,
                status="running",
                model=model[:200],
                requests=0,
                input_tokens=0,
                output_tokens=0,
                started_at=utcnow(),
            )
        )
        if prompt is not None:
            conversation = await session.get(Conversation, claim.conversation_id)
            if conversation is not None and not conversation.title:
                conversation.title = " ".join(prompt.split())[:80]


async def _finish(log: EventLog, done: DoneEvent, error: str | None) -> int:
    """Store the outcome: new messages, the turn's row, the conversation's totals.

    The conversation waits while its history ends with calls waiting for approvals — also
    after a failed turn, which leaves the history as it was.

    Returns:
        The ``done`` event's number in the log.
    """
    claim, now = log.claim, utcnow()
    usage = done.usage if done.usage is not None and done.usage.requests else log.usage
    async with log.database.session() as session:
        session.add_all(log.pending_rows())
        done_row = log.done_row(done)
        session.add(done_row)
        if done.messages:  # a turn that failed early has no history to write
            await clear_history_from(session, claim.conversation_id, done.new_message_index)
            store_history(
                session, claim.conversation_id, claim.turn, done.messages, done.new_message_index
            )
        turn = await session.get(ConversationTurn, (claim.conversation_id, claim.turn))
        if turn is not None:
            turn.status, turn.finished_at, turn.error = done.status, now, error
            turn.report = done.report.model_dump(mode="json") if done.report else None
            if usage is not None:
                turn.requests, turn.cost = usage.requests, usage.cost
                turn.input_tokens, turn.output_tokens = usage.input_tokens, usage.output_tokens
        await settle_approvals(session, claim.conversation_id)
        waiting = done.status == "waiting" or (
            done.status == "failed" and bool(pending_calls(log.history))
        )
        values: dict[str, Any] = {
            "status": "waiting" if waiting else "idle",
            "lease_until": None,
            "updated_at": now,
        }
        if log.redactor is not None and log.redactor.anonymise:
            values["pseudonyms"] = log.redactor.mapping
        if usage is not None:
            values.update(
                requests=Conversation.requests + usage.requests,
                input_tokens=Conversation.input_tokens + usage.input_tokens,
                output_tokens=Conversation.output_tokens + usage.output_tokens,
            )
            if usage.cost is not None:
                values["cost"] = func.coalesce(Conversation.cost, 0.0) + usage.cost
        await session.execute(
            update(Conversation).where(Conversation.id == claim.conversation_id).values(**values)
        )
    return done_row.seq


async def _interrupted(log: EventLog) -> None:
    """Record a turn stopped from outside (server shutdown) as failed, releasing the claim."""
    error = ErrorEvent(kind="internal", message=INTERRUPTED)
    with contextlib.suppress(Exception):
        await log.add(error)
        await _finish(log, DoneEvent(status="failed", new_message_index=0), INTERRUPTED)


async def _keep_claim(database: Database, conversation_id: str) -> None:
    while True:
        await asyncio.sleep(RENEW_EVERY)
        try:
            await renew(database, conversation_id)
        except Exception:  # the next renewal may work; the lease covers a few misses
            logger.warning("renewing the conversation's claim failed", exc_info=True)


async def run_turn(
    app: AppContext,
    claim: Claim,
    caller: Caller,
    prompt: str | None,
    model: Model,
    *,
    listener: Listener | None = None,
    limits: RunLimits | None = None,
) -> DoneEvent:
    """Run a claimed turn to its end, logging every event and storing the outcome.

    Args:
        app: The app context.
        claim: The conversation's claim (see :func:`tend.assistant.conversations.claim`).
        caller: Whose permissions the tools use.
        prompt: The user's message, or ``None`` to resume tool calls waiting for approvals.
        model: The model (the caller closes it).
        listener: Receives each event as it happens.
        limits: Per-run bounds.

    Returns:
        The turn's ``done`` event.
    """
    database, settings = app.database, app.settings
    await _start(database, claim, prompt, model_label(model))
    log = EventLog(database, claim, listener)
    keeper = asyncio.create_task(_keep_claim(database, claim.conversation_id))
    done: DoneEvent | None = None
    error: str | None = None
    try:
        history = log.history = await load_history(database, claim.conversation_id)
        log.redactor = await redactor_for(app, claim.conversation_id)
        deps = AssistantDeps.from_context(
            app,
            caller,
            outputs=OutputStore.from_settings(database, settings),
            budget=budget_for(settings, model),
            redactor=log.redactor,
            conversation_id=claim.conversation_id,
            hosts=claim.hosts,
            limiter=limiter_for(settings, database),
        )
        runs = await approved_runs(database, claim.conversation_id)
        agent = build_agent(model, settings)
        async for event in investigate(
            agent,
            deps,
            prompt,
            history=history,
            runs=runs,
            limits=limits or RunLimits.from_settings(settings),
        ):
            if isinstance(event, DoneEvent):
                done = event
                break
            if isinstance(event, ErrorEvent):
                error = event.message
            await log.add(event)
    except asyncio.CancelledError:
        await _interrupted(log)
        raise
    except Exception:  # tend's own failure: the turn ends, failed, and says so
        logger.exception("assistant turn failed")
        error = "the turn failed because of an error in tend (it is logged)"
        await log.add(ErrorEvent(kind="internal", message=error))
    finally:
        keeper.cancel()
    if done is None:
        done = DoneEvent(status="failed", new_message_index=0)
    log.tell(await _finish(log, done, error), done)
    if done.status == "waiting":
        await schedule_resume(app, claim.conversation_id)
    return done


async def schedule_resume(app: AppContext, conversation_id: str) -> bool:
    """Queue the resumption of a conversation whose waited-for approvals were decided.

    Returns:
        Whether a resumption was queued (nothing was decided: nothing to do).
    """
    decided = await decided_waiting(app.database, conversation_id)
    if not decided:
        return False
    try:
        await app.jobs.enqueue(
            "assistant.resume",
            {"conversation_id": conversation_id},
            requested_by="tend",
        )  # no idempotency key: a spare resumption finds nothing to do (or the claim taken)
    except ServiceUnavailable:  # the next message to the conversation resumes it anyway
        logger.warning("job broker unreachable; the conversation resumes with its next message")
        return False
    return True
