"""Compaction: older turns replaced by a summary before the context window fills.

The history itself is never rewritten (the transcript stays whole); what a request sends is a
*view*: the system prompt parts, a summary of the older turns, the latest user message, and the
recent turns verbatim. The view never separates a tool call from its return. The summary is
remembered (by position and a fingerprint of the last summarised message), so one summary serves
every later request until the window fills again, when the old summary and the next turns are
summarised together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pydantic_ai.direct import model_request
from pydantic_ai.messages import (
    BaseToolCallPart,
    BaseToolReturnPart,
    CompactionPart,
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    UserPromptPart,
)
from pydantic_ai.models import Model
from pydantic_core import to_json

from tend.assistant.outputs import fit_output
from tend.assistant.tokens import ContextBudget, TokenCounter, estimate_messages

Summariser = Callable[[str], Awaitable[str]]
"""Turns a plain-text transcript of older turns into a short summary."""

SUMMARY_PROMPT = (
    "You summarise the earlier part of an investigation of a server fleet so it can continue "
    "without it. Keep: what the user asked; every host, service, path, command and handle "
    "named; each finding with its evidence (numbers, error lines, times); what was ruled out; "
    "pending approvals and open questions. Drop pleasantries and repeated output. Answer with "
    "the summary only, in short lines, under 400 words."
)
SUMMARY_TOKENS = 800
"""Room a summary is assumed to take when choosing how much to summarise."""


def model_summariser(model: Model, *, prompt: str = SUMMARY_PROMPT) -> Summariser:
    """A summariser that asks ``model`` (in production the conversation's own model).

    Args:
        model: The model to ask.
        prompt: The instruction sent as the system prompt.

    Returns:
        The summariser.
    """

    async def summarise(transcript: str) -> str:
        request = ModelRequest(parts=[SystemPromptPart(prompt), UserPromptPart(transcript)])
        response = await model_request(model, [request])
        return "\n".join(p.content for p in response.parts if isinstance(p, TextPart)).strip()

    return summarise


def _text_of(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return to_json(value, fallback=str).decode()
    except (TypeError, ValueError):
        return str(value)


def render_transcript(messages: Sequence[ModelMessage], *, previous_summary: str | None) -> str:
    """A plain-text transcript of messages, for a summariser (any model can read it).

    Args:
        messages: The turns to summarise.
        previous_summary: The summary of the turns before them, if any.

    Returns:
        The transcript.
    """
    lines = [f"SUMMARY OF EARLIER TURNS:\n{previous_summary}"] if previous_summary else []
    for message in messages:
        for part in message.parts:
            if isinstance(part, UserPromptPart):
                lines.append(f"USER: {_text_of(part.content)}")
            elif isinstance(part, BaseToolReturnPart):
                lines.append(f"TOOL RESULT {part.tool_name}: {_text_of(part.content)}")
            elif isinstance(part, BaseToolCallPart):
                lines.append(f"TOOL CALL {part.tool_name}({_text_of(part.args)})")
            elif isinstance(part, TextPart):
                lines.append(f"ASSISTANT: {part.content}")
            elif isinstance(part, CompactionPart) and part.content:
                lines.append(f"SUMMARY OF EARLIER TURNS:\n{part.content}")
            elif not isinstance(part, SystemPromptPart | ThinkingPart):
                content = getattr(part, "content", None)
                if content:
                    lines.append(f"NOTE: {_text_of(content)}")
    return "\n".join(lines)


def _fingerprint(message: ModelMessage) -> str:
    """Identify a message across reloads of the same stored history."""
    ids = [
        str(getattr(part, "tool_call_id", None) or getattr(part, "part_kind", ""))
        for part in message.parts
    ]
    return f"{message.kind}|{message.timestamp}|{'/'.join(ids)}"


def _call_ids(message: ModelMessage) -> set[str]:
    return {p.tool_call_id for p in message.parts if isinstance(p, BaseToolCallPart)}


def _return_ids(message: ModelMessage) -> set[str]:
    return {p.tool_call_id for p in message.parts if isinstance(p, BaseToolReturnPart)}


def valid_boundaries(messages: Sequence[ModelMessage]) -> list[int]:
    """Indexes ``k`` where ``messages[:k]`` can be summarised without orphaning a tool return.

    ``k`` is valid when no tool call before it is answered at or after it; the last message is
    always kept.
    """
    later_returns: set[str] = set()
    suffix_returns: list[set[str]] = [set()] * (len(messages) + 1)
    for k in range(len(messages) - 1, -1, -1):
        later_returns = later_returns | _return_ids(messages[k])
        suffix_returns[k] = later_returns
    valid = []
    calls: set[str] = set()
    for k in range(1, len(messages)):
        calls |= _call_ids(messages[k - 1])
        if not calls & suffix_returns[k]:
            valid.append(k)
    return valid


@dataclass
class Compactor:
    """Builds the compacted view of a history and remembers its summary.

    Keep one per conversation to reuse its summary across runs, or let the capability make one
    per run.
    """

    budget: ContextBudget
    summariser: Summariser
    redact: Callable[[str], str] = field(default=lambda text: text)
    counter: TokenCounter = field(default_factory=TokenCounter)
    summary: str | None = None
    upto: int = 0
    anchor: str | None = None
    summaries_made: int = 0

    def _cached(self, messages: Sequence[ModelMessage]) -> bool:
        return (
            self.summary is not None
            and 0 < self.upto < len(messages)
            and _fingerprint(messages[self.upto - 1]) == self.anchor
        )

    def _view(self, messages: Sequence[ModelMessage], k: int, summary: str) -> list[ModelMessage]:
        older = messages[:k]
        system: list[ModelRequestPart] = [
            p for m in older for p in m.parts if isinstance(p, SystemPromptPart)
        ]
        latest_user = next(
            (
                i
                for i in range(len(messages) - 1, -1, -1)
                if any(isinstance(p, UserPromptPart) for p in messages[i].parts)
            ),
            None,
        )
        carried: list[ModelRequestPart] = []
        if latest_user is not None and latest_user < k:
            carried = [p for p in messages[latest_user].parts if isinstance(p, UserPromptPart)]
        marker = CompactionPart(summary, metadata={"tend_compacted_messages": k})
        head: list[ModelRequestPart] = [*system, marker, *carried]
        first = messages[k]
        if isinstance(first, ModelRequest):
            merged = ModelRequest(parts=[*head, *first.parts], timestamp=first.timestamp)
            return [merged, *messages[k + 1 :]]
        return [ModelRequest(parts=head, timestamp=first.timestamp), *messages[k:]]

    def _choose(self, messages: Sequence[ModelMessage], fixed: int, start: int) -> int | None:
        """The smallest valid boundary after ``start`` whose view fits the compaction target."""
        boundaries = [k for k in valid_boundaries(messages) if k > start]
        if not boundaries:
            return None
        sizes = [estimate_messages([m], self.counter) for m in messages]
        suffix = [0] * (len(messages) + 1)
        for i in range(len(messages) - 1, -1, -1):
            suffix[i] = suffix[i + 1] + sizes[i]
        chosen = next(
            (
                k
                for k in boundaries
                if fixed + SUMMARY_TOKENS + suffix[k] <= self.budget.compaction_target
            ),
            boundaries[-1],
        )
        if suffix[start] - suffix[chosen] <= SUMMARY_TOKENS:
            return None  # a summary would not be smaller than what it replaces
        return chosen

    async def view(
        self, messages: Sequence[ModelMessage], *, fixed_tokens: int
    ) -> list[ModelMessage]:
        """The messages to send: the history itself, or a compacted view when it is too big.

        Args:
            messages: The whole history (last message: the request being made).
            fixed_tokens: Tokens of the request outside the messages (instructions, tools).

        Returns:
            The view.
        """
        cached = self._cached(messages)
        current = self._view(messages, self.upto, self.summary or "") if cached else list(messages)
        if (
            fixed_tokens + estimate_messages(current, self.counter)
            <= self.budget.compaction_threshold
        ):
            return current
        start = self.upto if cached else 0
        k = self._choose(messages, fixed_tokens, start)
        if k is None:
            return current
        older = messages[start:k]
        transcript = render_transcript(older, previous_summary=self.summary if cached else None)
        room = max(1024, self.budget.input_tokens - SUMMARY_TOKENS - 512)
        transcript = fit_output(transcript, room).text
        summary = await self.summariser(self.redact(transcript))
        self.summary, self.upto, self.anchor = summary, k, _fingerprint(messages[k - 1])
        self.summaries_made += 1
        return self._view(messages, k, summary)
