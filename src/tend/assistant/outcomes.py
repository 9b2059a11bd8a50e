"""How an investigation run ends: per-run limits, and the ``usage``, ``error`` and ``done`` events.

Helpers of the one loop in :mod:`tend.assistant.agent`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_ai import DeferredToolRequests, DeferredToolResults
from pydantic_ai.exceptions import UnexpectedModelBehavior, UsageLimitExceeded
from pydantic_ai.messages import ModelMessage
from pydantic_ai.usage import RunUsage, UsageLimits

from tend.assistant.deps import AssistantDeps
from tend.assistant.events import DoneEvent, ErrorEvent, ErrorKind, UsageEvent
from tend.assistant.guard import LoopDetected
from tend.assistant.limits import AssistantLimitReached
from tend.assistant.llm import price_of
from tend.assistant.llm_errors import MODEL_FAILURES, explain_model_failure
from tend.assistant.pending import PendingCall, remember_pending
from tend.assistant.report import InvestigationReport
from tend.assistant.stream import StreamMapper
from tend.settings import Settings

DEFAULT_REPEATS = 3


@dataclass(frozen=True, slots=True)
class RunLimits:
    """Per-run bounds: model requests (steps), tool calls, tokens, identical repeated calls."""

    steps: int = 30
    tool_calls: int | None = 100
    total_tokens: int | None = 400_000
    repeats: int = DEFAULT_REPEATS

    @classmethod
    def from_settings(cls, settings: Settings) -> RunLimits:
        """The bounds configured with ``TEND_ASSISTANT_*``."""
        return cls(
            steps=settings.assistant_max_steps,
            tool_calls=settings.assistant_max_tool_calls,
            total_tokens=settings.assistant_run_tokens,
            repeats=settings.assistant_repeat_calls,
        )

    def usage_limits(self) -> UsageLimits:
        """The pydantic-ai usage limits these bounds translate to."""
        return UsageLimits(
            request_limit=self.steps,
            tool_calls_limit=self.tool_calls,
            total_tokens_limit=self.total_tokens,
        )


def usage_event(usage: RunUsage, model_name: str | None) -> UsageEvent:
    """The ``usage`` event for a run's usage so far, priced when the model's price is known."""
    return UsageEvent(
        requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        tool_calls=usage.tool_calls,
        cost=price_of(usage, model_name) if model_name else None,
    )


def _limit_kind(exc: UsageLimitExceeded) -> ErrorKind:
    return "step_limit" if "request_limit" in str(exc) else "usage_limit"


def _limit_message(exc: UsageLimitExceeded, limits: RunLimits) -> str:
    text = str(exc)
    if "request_limit" in text:
        return f"the investigation stopped after {limits.steps} steps (the step limit)"
    if "tool_calls_limit" in text:
        return f"the investigation stopped after {limits.tool_calls} tool calls (the limit)"
    return f"the investigation used its token budget of {limits.total_tokens} tokens for one run"


STOPS: tuple[type[BaseException], ...] = (
    UsageLimitExceeded,
    AssistantLimitReached,
    LoopDetected,
    UnexpectedModelBehavior,
    *MODEL_FAILURES,
)
INTERNAL_ERROR = "the investigation failed because of an error in tend (it is logged)"


def stop_event(exc: BaseException, deps: AssistantDeps, limits: RunLimits) -> ErrorEvent:
    """Say in one sentence why a run stopped early."""
    if isinstance(exc, UsageLimitExceeded):
        return ErrorEvent(kind=_limit_kind(exc), message=_limit_message(exc, limits))
    if isinstance(exc, AssistantLimitReached):
        return ErrorEvent(kind="usage_limit", message=str(exc.detail))
    if isinstance(exc, LoopDetected):
        return ErrorEvent(kind="loop_guard", message=str(exc))
    if isinstance(exc, UnexpectedModelBehavior) and not isinstance(exc, MODEL_FAILURES):
        return ErrorEvent(kind="model_behavior", message=f"the model misbehaved: {exc.message}")
    failure = explain_model_failure(exc, deps.execution.settings)
    return ErrorEvent(kind="model", message=str(failure.detail))


def done_event(
    output: InvestigationReport | DeferredToolRequests,
    messages: list[ModelMessage],
    start: int,
    usage: UsageEvent,
    mapper: StreamMapper,
) -> DoneEvent:
    """The final event of a run that ended normally: with a report, or waiting for approvals."""
    if isinstance(output, DeferredToolRequests):
        remember_pending(messages, output)
        return DoneEvent(
            status="waiting",
            pending_approvals=[
                str(output.metadata.get(c.tool_call_id, {}).get("approval_id"))
                for c in output.calls
            ],
            usage=usage,
            messages=messages,
            new_message_index=start,
        )
    return DoneEvent(
        status="completed",
        report=mapper.restore_report(output),
        usage=usage,
        messages=messages,
        new_message_index=start,
    )


def all_undecided(waiting: Sequence[PendingCall], deferred: DeferredToolResults) -> bool:
    """Whether every waiting call still waits for a human (nothing new to tell the model)."""
    return all(
        getattr(deferred.calls.get(c.tool_call_id), "status", None) == "approval_required"
        for c in waiting
    )


def failed_event(messages: list[ModelMessage], usage: RunUsage | None) -> DoneEvent:
    """A failed run leaves the history as it was: nothing half-done is kept for the next turn."""
    return DoneEvent(
        status="failed",
        usage=usage_event(usage, None) if usage is not None else None,
        messages=messages,
        new_message_index=len(messages),
    )
