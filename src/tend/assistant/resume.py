"""Conversations waiting for approvals continue once a human decided.

When a tool call of a conversation asked for a ``change``, the turn ended ``waiting``. Deciding
the approval (through the API or ``tend approvals``) calls :func:`approval_decided`, which keeps
what the approved run printed (so the model sees the output, not only exit codes) and queues the
``assistant.resume`` job. That job — or the conversation's next message, whichever comes first —
runs a turn that answers the waiting calls with the outcome (the result, the denial, the
expiry) and lets the model go on. A conversation's claim keeps the two from running at once.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from tend.assistant.conversation_models import Conversation, ConversationApproval
from tend.auth.models import Role, User
from tend.errors import Conflict, ServiceUnavailable
from tend.execution.schemas import ApprovalOutcome
from tend.execution.service import Caller
from tend.jobs.kinds import JobContext, job_kind

if TYPE_CHECKING:
    from tend.assistant.events import DoneEvent
    from tend.assistant.turns import Listener
    from tend.context import AppContext

logger = logging.getLogger("tend.assistant")
# _LAZY: the agent and the model clients are imported when a conversation resumes, not when
# the app context (or any CLI command) imports this module to install the hook.


class OwnerUnavailable(PermissionError):
    """The conversation's owner is disabled or gone: nothing runs in their name."""


async def owner_caller(app: AppContext, conversation_id: str) -> Caller:
    """The conversation's owner, re-read now, with at most the role of the last turn.

    Raises:
        OwnerUnavailable: The owner is disabled or gone, or the conversation is.
    """
    async with app.database.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        user = await session.get(User, conversation.user_id) if conversation else None
        if conversation is None or user is None or user.disabled:
            msg = f"the owner of conversation {conversation_id} is disabled or gone"
            raise OwnerUnavailable(msg)
        role = min(Role(user.role), Role(conversation.role), key=lambda r: r.rank)
        return Caller(user_id=user.id, username=user.username, role=role)


async def approval_decided(app: AppContext, outcome: ApprovalOutcome) -> None:
    """The approvals' decision hook: remember the outcome, queue the conversation's resumption.

    Args:
        app: The app context.
        outcome: The decided approval and, when approved, its run.
    """
    approval = outcome.approval
    async with app.database.session() as session:
        link = await session.get(ConversationApproval, approval.id)
        if link is None:  # not asked for by a conversation
            return
        link.state, link.decided_at = approval.status, approval.decided_at
        if outcome.run is not None:
            link.run = outcome.run.model_dump(mode="json")
        conversation_id = link.conversation_id
    from tend.assistant.turns import schedule_resume  # noqa: PLC0415 - see _LAZY

    await schedule_resume(app, conversation_id)


def install(app: AppContext) -> None:
    """Let decided approvals resume the conversations waiting for them."""
    app.execution.decision_hooks.append(partial(approval_decided, app))


async def resume_conversation(
    app: AppContext, conversation_id: str, *, listener: Listener | None = None
) -> DoneEvent | None:
    """Continue a conversation whose waited-for approvals were decided.

    Args:
        app: The app context.
        conversation_id: The conversation.
        listener: Receives the turn's events as they happen.

    Returns:
        The turn's ``done`` event, or ``None`` when there was nothing to resume.

    Raises:
        AssistantNotConfigured: No model is configured.
        Conflict: Another turn of the conversation is running.
        OwnerUnavailable: The owner is disabled or gone.
    """
    from tend.assistant.conversations import claim, decided_waiting  # noqa: PLC0415 - _LAZY
    from tend.assistant.llm import aclose_model, build_model  # noqa: PLC0415
    from tend.assistant.turns import run_turn  # noqa: PLC0415

    if not await decided_waiting(app.database, conversation_id):
        return None
    caller = await owner_caller(app, conversation_id)
    model = build_model(app.settings)
    try:
        held = await claim(app.database, conversation_id, caller.role)
        return await run_turn(app, held, caller, None, model, listener=listener)
    finally:
        await aclose_model(model)


@job_kind(
    "assistant.resume",
    idempotent=True,
    description="continue a conversation once the approvals it waits for are decided",
)
async def resume_job(ctx: JobContext) -> dict[str, Any]:
    """Resume ``params.conversation_id`` (a no-op when nothing waits or a turn is running)."""
    conversation_id = str(ctx.params["conversation_id"])
    try:
        done = await resume_conversation(ctx.app, conversation_id)
    except (ServiceUnavailable, Conflict, OwnerUnavailable) as exc:  # no model, busy, owner gone
        reason = str(getattr(exc, "detail", exc))
        logger.info("conversation %s not resumed: %s", conversation_id, reason)
        return {"resumed": False, "reason": reason}
    if done is None:
        return {"resumed": False, "reason": "nothing to resume"}
    return {"resumed": True, "status": done.status, "pending_approvals": done.pending_approvals}
