"""A scripted model for assistant tests: pydantic-ai's ``FunctionModel`` playing a list of replies.

Each reply is what the model "says" at one step: text, tool calls (parallel when several), or a
callable that looks at the messages so far (e.g. to pick up a paging handle) and returns one.
When the script runs out the model submits a plain report. Every request is recorded, so a test
can check what the model was sent (tool results, retry prompts, instructions). Non-streamed
requests come only from compaction; they are answered with a short summary and recorded apart.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel


@dataclass(frozen=True)
class Call:
    """A tool call; ``args`` may be a raw string to send malformed JSON."""

    tool: str
    args: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Say:
    """Text the model streams (in small chunks)."""

    text: str


Piece = Call | Say
Reply = Piece | Sequence[Piece] | Callable[[list[ModelMessage]], "Piece | Sequence[Piece]"]


def report(
    summary: str = "done",
    findings: list[dict[str, Any]] | None = None,
    actions: list[dict[str, Any]] | None = None,
) -> Call:
    """The model's final report (a call of the ``submit_report`` output tool)."""
    args: dict[str, Any] = {"summary": summary}
    if findings is not None:
        args["findings"] = findings
    if actions is not None:
        args["proposed_actions"] = actions
    return Call("submit_report", args)


def tool_returns(messages: Sequence[ModelMessage]) -> list[ToolReturnPart]:
    """Every tool return (results and retry prompts) the model was sent, in order."""
    return [
        part
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    ]


def last_result(messages: Sequence[ModelMessage]) -> Any:
    """The content of the last tool return the model was sent."""
    return tool_returns(messages)[-1].content


def as_dict(content: Any) -> dict[str, Any]:
    """A tool return's content as plain JSON data."""
    if hasattr(content, "model_dump"):
        data: dict[str, Any] = content.model_dump(mode="json")
        return data
    assert isinstance(content, dict), content
    return content


class ScriptedModel:
    """Plays replies in order; records every request it receives."""

    def __init__(self, *replies: Reply) -> None:
        """Script the model.

        Args:
            replies: One entry per model request, in order.
        """
        self.replies = list(replies)
        self.requests: list[list[ModelMessage]] = []
        self.infos: list[AgentInfo] = []
        self.summaries: list[list[ModelMessage]] = []
        self._ids = 0

    @property
    def model(self) -> FunctionModel:
        """The pydantic-ai model to build the agent with."""
        return FunctionModel(self._summarise, stream_function=self._stream, model_name="scripted")

    async def _summarise(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        """Non-streamed requests are compaction's: answer with a short summary."""
        self.summaries.append(list(messages))
        return ModelResponse(parts=[TextPart(f"summary #{len(self.summaries)} of earlier turns")])

    def _next(self, messages: list[ModelMessage]) -> list[Piece]:
        reply: Reply = self.replies.pop(0) if self.replies else report()
        if callable(reply):
            reply = reply(messages)
        return [reply] if isinstance(reply, Call | Say) else list(reply)

    async def _stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        self.requests.append(list(messages))
        self.infos.append(info)
        index = 0
        for piece in self._next(messages):
            if isinstance(piece, Say):
                for start in range(0, len(piece.text), 7):
                    yield piece.text[start : start + 7]
                continue
            self._ids += 1
            args = piece.args if isinstance(piece.args, str) else json.dumps(piece.args)
            call_id = piece.id or f"call-{self._ids}"
            yield {index: DeltaToolCall(name=piece.tool, json_args=args, tool_call_id=call_id)}
            index += 1
