"""The events one investigation streams: the same for SSE, ``tend ask`` and the non-streaming call.

Every event is a pydantic model with a ``type`` discriminator; ``event.model_dump(mode="json")``
is what a client receives (``DoneEvent.messages`` is excluded: it is for persistence).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai.messages import ModelMessage

from tend.assistant.report import InvestigationReport

ErrorKind = Literal[
    "model",  # the provider failed after its retries
    "usage_limit",  # a per-run or per-user daily token (or cost) limit was reached
    "step_limit",  # too many model requests in one run
    "loop_guard",  # the model kept repeating the same tool call
    "model_behavior",  # the model kept sending invalid output or arguments
    "internal",  # a bug in tend; logged with its traceback
]


class TextEvent(BaseModel):
    """A piece of the model's text, in order."""

    type: Literal["text"] = "text"
    delta: str


class ToolCallEvent(BaseModel):
    """The model calls a tool."""

    type: Literal["tool_call"] = "tool_call"
    tool_call_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class ToolResultEvent(BaseModel):
    """A tool's result (``status`` ``retry`` when the arguments were sent back to be fixed)."""

    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    tool: str
    status: Literal["success", "error", "no_data", "approval_required", "retry"]
    result: Any = None


class ApprovalRequiredEvent(BaseModel):
    """A command the model asked for is a change: it waits for a human's decision."""

    type: Literal["approval_required"] = "approval_required"
    tool_call_id: str
    approval_id: str
    argv: list[str]
    hosts: list[str]
    risk: str
    reason: str
    four_eyes: bool = False
    expires_at: datetime | None = None


class UsageEvent(BaseModel):
    """Tokens used by the run so far (after each model request)."""

    type: Literal["usage"] = "usage"
    requests: int
    input_tokens: int
    output_tokens: int
    tool_calls: int
    cost: float | None = Field(default=None, description="US dollars, when the price is known")


class ErrorEvent(BaseModel):
    """The run stopped early; ``message`` says why in one sentence."""

    type: Literal["error"] = "error"
    kind: ErrorKind
    message: str


class DoneEvent(BaseModel):
    """The run ended: ``completed`` with a report, ``waiting`` for approvals, or ``failed``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    type: Literal["done"] = "done"
    status: Literal["completed", "waiting", "failed"]
    report: InvestigationReport | None = None
    pending_approvals: list[str] = Field(default_factory=list)
    usage: UsageEvent | None = None
    messages: list[ModelMessage] = Field(
        default_factory=list,
        exclude=True,
        description="every message of the conversation after this run, for persistence",
    )
    new_message_index: int = Field(
        default=0, exclude=True, description="messages[new_message_index:] are this run's"
    )


AssistantEvent = Annotated[
    TextEvent
    | ToolCallEvent
    | ToolResultEvent
    | ApprovalRequiredEvent
    | UsageEvent
    | ErrorEvent
    | DoneEvent,
    Field(discriminator="type"),
]
