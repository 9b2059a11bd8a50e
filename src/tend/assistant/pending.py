"""Tool calls waiting for a human: remember their approvals in the history, resume with outcomes.

When a command the model asked for is a ``change``, the tool call is deferred (pydantic-ai's
``CallDeferred``) and the run ends waiting. The approval's id is written into the metadata of the
model response holding the call (kept with the history, never sent to a provider), so a later
run, even after a server restart, finds which approval each waiting call belongs to and answers
it with what happened: the run's result once approved and executed, the denial, the expiry, or
"still waiting" while no one has decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_ai import DeferredToolRequests, DeferredToolResults
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, ToolCallPart

from tend.assistant.deps import AssistantDeps
from tend.assistant.results import CommandResult, HostOutput
from tend.assistant.runs import command_result
from tend.execution.approvals import expire_stale
from tend.execution.models import Approval
from tend.execution.policy import Risk
from tend.execution.schemas import RunResponse

APPROVALS_KEY = "tend_approvals"
"""Key in ``ModelResponse.metadata``: ``{tool_call_id: approval details}``."""


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A tool call of the history that has no result yet."""

    tool_call_id: str
    tool_name: str
    approval: dict[str, Any] | None


def remember_pending(messages: Sequence[ModelMessage], requests: DeferredToolRequests) -> None:
    """Record each deferred call's approval in the metadata of the response that made it.

    Args:
        messages: The run's whole history (modified in place).
        requests: The run's deferred calls, with the approval details as metadata.
    """
    wanted = {call.tool_call_id for call in requests.calls}
    for message in messages:
        if not isinstance(message, ModelResponse):
            continue
        ids = {p.tool_call_id for p in message.parts if isinstance(p, ToolCallPart)} & wanted
        if ids:
            known = dict((message.metadata or {}).get(APPROVALS_KEY, {}))
            known.update({i: requests.metadata.get(i, {}) for i in ids})
            message.metadata = {**(message.metadata or {}), APPROVALS_KEY: known}


def pending_calls(messages: Sequence[ModelMessage]) -> list[PendingCall]:
    """Return the calls of the last model response that no later request answers.

    Args:
        messages: A conversation's history.

    Returns:
        The waiting calls, in the order the model made them (empty when none wait).
    """
    last = next(
        (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], ModelResponse)),
        None,
    )
    if last is None:
        return []
    response = messages[last]
    assert isinstance(response, ModelResponse)
    answered = {
        getattr(part, "tool_call_id", None)
        for message in messages[last + 1 :]
        if isinstance(message, ModelRequest)
        for part in message.parts
    }
    approvals: dict[str, Any] = (response.metadata or {}).get(APPROVALS_KEY, {})
    return [
        PendingCall(part.tool_call_id, part.tool_name, approvals.get(part.tool_call_id))
        for part in response.parts
        if isinstance(part, ToolCallPart) and part.tool_call_id not in answered
    ]


async def outcome_of(
    deps: AssistantDeps, call: PendingCall, runs: Mapping[str, RunResponse]
) -> CommandResult:
    """What the model learns about a waiting call now.

    Args:
        deps: The run's dependencies.
        call: The waiting call.
        runs: Results of approved runs the caller holds, by approval id (their output is not
            kept in the database; without them the model gets exit codes and sizes only).

    Returns:
        ``approval_required`` while undecided, ``success`` once run, ``error`` when denied,
        expired or unknown.
    """
    details = call.approval or {}
    argv = list(details.get("argv", []))
    approval_id = details.get("approval_id")
    if not approval_id:
        return CommandResult(status="error", argv=argv, message="no record of this request")
    await expire_stale(deps.execution)
    async with deps.database.session() as session:
        row = await session.get(Approval, approval_id)
        if row is None:
            return CommandResult(
                status="error", argv=argv, message=f"approval {approval_id} no longer exists"
            )
        status, decided_by, note = row.status, row.decided_by, row.decision_note
        stored, run_id, risk = list(row.results or []), row.run_id, Risk(row.risk)
    base: dict[str, Any] = {"argv": argv, "approval_id": approval_id, "risk": risk}
    if status in ("pending", "approved"):
        why = (
            "still waiting for a human's decision; it has not run"
            if status == "pending"
            else "approved and starting; its result is not in yet"
        )
        return CommandResult(
            status="approval_required", message=f"{why}. Do not ask again.", **base
        )
    if status == "denied":
        why = f": {note}" if note else ""
        return CommandResult(
            status="error", message=f"denied by {decided_by}{why}; it did not run", **base
        )
    if status == "expired":
        return CommandResult(
            status="error", message="nobody decided in time; the request expired unrun", **base
        )
    if approval_id in runs:
        return await command_result(deps, argv, runs[approval_id], approval_id=approval_id)
    if run_id is None:
        return CommandResult(status="error", message=f"approved but not run: {note}", **base)
    hosts = [
        HostOutput(
            host=r["host"], status=r["status"], exit_code=r.get("exit_code"), error=r.get("error")
        )
        for r in stored
    ]
    return CommandResult(
        status="success",
        message=f"approved by {decided_by} and run; its output was not kept, only exit codes",
        run_id=run_id,
        hosts=hosts,
        **base,
    )


async def resolve_pending(
    deps: AssistantDeps, calls: Sequence[PendingCall], runs: Mapping[str, RunResponse]
) -> DeferredToolResults:
    """Answer every waiting call with its outcome so the run can go on.

    Args:
        deps: The run's dependencies.
        calls: The waiting calls (:func:`pending_calls`).
        runs: Results of approved runs the caller holds, by approval id.

    Returns:
        Results for ``deferred_tool_results``.
    """
    results = DeferredToolResults()
    for call in calls:
        results.calls[call.tool_call_id] = await outcome_of(deps, call, runs)
    return results
