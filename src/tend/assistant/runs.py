"""Commands the assistant's tools run, through the one execution path, as the asking user.

``request`` hands an argv to ``ExecutionService.request_run`` with the user's ``Caller``: the
policy judges it, the audit log records it, a ``read`` runs now, a ``change`` becomes the same
pending approval as everywhere else (the tool call is deferred with the approval's details), and
a refusal comes back as an ``error`` result with the reason. ``command_result`` fits what a run
printed into the context budget.
"""

from __future__ import annotations

import shlex

from pydantic import ValidationError
from pydantic_ai import CallDeferred, ModelRetry

from tend.assistant.deps import AssistantDeps
from tend.assistant.results import CommandResult, HostOutput
from tend.errors import Forbidden, TendError
from tend.execution.policy import Risk
from tend.execution.schemas import ApprovalPending, RunRequest, RunResponse
from tend.execution.service import PolicyRefused

COMMAND_TIMEOUT = 60.0
STDOUT_SHARE = 0.75
STDERR_SHARE = 0.2
"""Of one host's share of the tool-output budget; the rest is the result's own fields."""


async def request(
    deps: AssistantDeps, argv: list[str], targets: list[str], *, reason: str | None = None
) -> RunResponse | CommandResult:
    """Request ``argv`` on ``targets`` through the execution path as the asking user.

    Args:
        deps: The run's dependencies (the caller, the execution service).
        argv: The command.
        targets: Host names, ``tag:NAME`` or ``all``.
        reason: Why, shown to approvers of a change.

    Returns:
        The finished run of a ``read``, or an ``error`` result with the reason it did not run.

    Raises:
        ModelRetry: For a malformed argv or target (the model is asked to fix it).
        CallDeferred: For a ``change``: the pending approval's id and details are the metadata;
            the call resumes with the outcome once a human decides.
    """
    why = f"asked through the assistant by {deps.caller.username}"
    if reason:
        why += f": {reason}"
    try:
        run_request = RunRequest(argv=argv, targets=targets, timeout=COMMAND_TIMEOUT, reason=why)
    except ValidationError as exc:  # a malformed argv or host selector: the model fixes it
        raise ModelRetry(_errors(exc)) from exc
    try:
        outcome = await deps.execution.request_run(deps.caller, run_request)
    except PolicyRefused as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"reason": exc.detail}
        return CommandResult(
            status="error",
            argv=argv,
            risk=Risk.FORBIDDEN,
            policy_reason=str(detail.get("reason")),
            message=f"refused by the policy: {detail.get('reason')}",
        )
    except Forbidden as exc:  # a viewer asking for a change
        return CommandResult(
            status="error", argv=argv, risk=Risk.CHANGE, message=f"refused: {exc.detail}"
        )
    except TendError as exc:  # unknown host or tag, invalid argv
        return CommandResult(status="error", argv=argv, message=str(exc.detail))
    if isinstance(outcome, ApprovalPending):
        raise CallDeferred(metadata=pending_metadata(argv, outcome))
    return outcome


async def run_argv(
    deps: AssistantDeps, argv: list[str], targets: list[str], *, reason: str | None = None
) -> CommandResult:
    """Request a command (see :func:`request`) and fit what it printed to the budget."""
    outcome = await request(deps, argv, targets, reason=reason)
    if isinstance(outcome, CommandResult):
        return outcome
    return await command_result(deps, argv, outcome)


def pending_metadata(argv: list[str], pending: ApprovalPending) -> dict[str, object]:
    """What a deferred call carries about its approval (read back by the loop and on resume)."""
    return {
        "approval_id": pending.approval_id,
        "argv": list(argv),
        "hosts": list(pending.hosts),
        "risk": pending.risk.value,
        "reason": pending.reason,
        "four_eyes": pending.four_eyes,
        "expires_at": pending.expires_at.isoformat(),
    }


async def command_result(
    deps: AssistantDeps, argv: list[str], run: RunResponse, *, approval_id: str | None = None
) -> CommandResult:
    """Turn a finished run into the model's view: per-host outputs fitted to the budget.

    Args:
        deps: The run's dependencies.
        argv: The command.
        run: The run's results.
        approval_id: The approval that allowed it, for a change.

    Returns:
        ``success`` when the command ran on at least one host, else ``error``.
    """
    share = 1 / max(1, len(run.results))
    label = shlex.join(argv)[:128]
    hosts = []
    for result in run.results:
        hosts.append(
            HostOutput(
                host=result.host,
                status=result.status,
                exit_code=result.exit_code,
                stdout=await deps.fit(result.stdout, share=share * STDOUT_SHARE, label=label)
                if result.stdout
                else None,
                stderr=await deps.fit(result.stderr, share=share * STDERR_SHARE, label=label)
                if result.stderr
                else None,
                error=result.error,
            )
        )
    ran = any(h.status in ("ok", "failed") for h in hosts)
    return CommandResult(
        status="success" if ran else "error",
        message=None if ran else "the command could not run on any host",
        argv=argv,
        risk=run.risk,
        policy_reason=run.reason,
        run_id=run.run_id,
        approval_id=approval_id,
        hosts=hosts,
    )


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
    )
