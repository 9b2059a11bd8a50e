"""Cheap token estimation and the per-model context budget.

No tokenizer is downloaded: a text is counted as the pieces a BPE tokenizer typically makes of it
(letter runs of up to four, digit groups of up to three, each punctuation mark, other symbol or
line break on its own), plus a safety margin. On prose this over-counts real tokenizers a little;
on logs full of numbers and punctuation it stays close, which is where an under-count would hurt.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

if TYPE_CHECKING:
    from tend.settings import Settings

# One match is roughly one token of a BPE vocabulary; a line break counts too (JSON sends "\\n").
_PIECE = re.compile(r"[A-Za-z]{1,4}|[0-9]{1,3}|[^\sA-Za-z0-9]|\n")
SAFETY_MARGIN = 1.1
"""Every estimate is multiplied by this, so a real tokenizer rarely finds more."""
SCAN_LIMIT = 64 * 1024
"""Texts up to this many characters are scanned whole; longer ones are sampled at both ends."""
_SAMPLE = SCAN_LIMIT // 2
PART_OVERHEAD = 4
"""Tokens a provider spends on the framing of one message part (role, ids, separators)."""


def _pieces(text: str) -> int:
    return len(_PIECE.findall(text))


def estimate_tokens(text: str) -> int:
    """Estimate how many tokens a model would count in ``text``.

    Long texts are not scanned whole: the density of their first and last 32 K characters is
    extrapolated to their length, so a 50 MB string costs the same as a 64 KB one.

    Args:
        text: Any text.

    Returns:
        The estimate, margin included (0 for the empty string).
    """
    if not text:
        return 0
    if len(text) <= SCAN_LIMIT:
        return math.ceil(_pieces(text) * SAFETY_MARGIN)
    sample = text[:_SAMPLE] + text[-_SAMPLE:]
    density = _pieces(sample) / len(sample)
    # Never credit a long text with fewer than one token per four characters.
    return math.ceil(max(density, 0.25) * len(text) * SAFETY_MARGIN)


def utf8_size(text: str) -> int:
    """The size of ``text`` in UTF-8 bytes, without encoding a copy of a large ASCII text."""
    if text.isascii():
        return len(text)
    step = 1 << 20
    return sum(len(text[i : i + step].encode("utf-8")) for i in range(0, len(text), step))


class TokenCounter:
    """``estimate_tokens`` with a memory of texts already counted.

    A conversation's history is re-estimated before every model request; remembering each text
    (strings hash once, then look up in constant time) keeps that cost to the new messages.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        """Create an empty counter.

        Args:
            max_entries: Remembered texts; the memory is cleared when it grows past this.
        """
        self._max = max_entries
        self._known: dict[str, int] = {}
        # Message parts are not changed once in a history: their estimate is kept by identity
        # (the part is kept alive with it, so its id is not reused).
        self._parts: dict[int, tuple[Any, int]] = {}

    def text(self, text: str) -> int:
        """Estimate the tokens of one text."""
        if len(text) > SCAN_LIMIT:
            return estimate_tokens(text)  # sampled: already cheap, and not worth keeping alive
        found = self._known.get(text)
        if found is None:
            if len(self._known) >= self._max:
                self._known.clear()
            found = self._known[text] = estimate_tokens(text)
        return found

    def part(self, part: Any) -> int:
        """``estimate_part`` remembered per part object."""
        found = self._parts.get(id(part))
        if found is not None and found[0] is part:
            return found[1]
        if len(self._parts) >= self._max:
            self._parts.clear()
        tokens = estimate_part(part, self)
        self._parts[id(part)] = (part, tokens)
        return tokens

    def value(self, value: Any) -> int:
        """Estimate the tokens of a JSON-like value as a model would receive it (its JSON text).

        Strings are counted one by one, so a value holding a huge string is never serialised.

        Args:
            value: A string, number, mapping, sequence, or anything pydantic can make JSON of.

        Returns:
            The estimate.
        """
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return 1
        if isinstance(value, dict):
            return sum(self.value(k) + self.value(v) + 2 for k, v in value.items()) + 2
        if isinstance(value, list | tuple):
            return sum(self.value(item) + 1 for item in value) + 2
        try:
            plain = to_jsonable_python(value)
        except Exception:  # not JSON-able: count what str() would send
            return self.text(str(value))
        if isinstance(plain, dict | list | str):
            return self.value(plain)
        return self.text(json.dumps(plain, default=str))

    def texts(self, texts: Iterable[str]) -> int:
        """Sum the estimates of several texts, each with a part's framing overhead."""
        return sum(self.text(text) + PART_OVERHEAD for text in texts)


@dataclass(frozen=True, slots=True)
class ContextBudget:
    """How a model's context window is shared out.

    ``context_tokens`` is the window; ``reserve_for_output`` is kept free for the answer, and the
    rest (``input_tokens``) is what a request may hold. One tool output may take
    ``tool_output_share`` of it; older turns are compacted when a request would pass
    ``compact_at`` of it, down to ``compact_to`` of it.
    """

    context_tokens: int
    reserve_for_output: int = 4096
    tool_output_share: float = 0.2
    compact_at: float = 0.8
    compact_to: float = 0.5

    def __post_init__(self) -> None:
        """Refuse shares that cannot work."""
        if self.context_tokens < 1024:
            msg = f"context_tokens must be at least 1024, got {self.context_tokens}"
            raise ValueError(msg)
        if not 0 < self.reserve_for_output <= self.context_tokens // 2:
            msg = "reserve_for_output must be positive and at most half the context window"
            raise ValueError(msg)
        if not 0 < self.tool_output_share <= 0.5:
            msg = "tool_output_share must be in (0, 0.5]"
            raise ValueError(msg)
        if not 0 < self.compact_to < self.compact_at <= 1:
            msg = "compaction needs 0 < compact_to < compact_at <= 1"
            raise ValueError(msg)

    @classmethod
    def for_window(cls, context_tokens: int, *, tool_output_share: float = 0.2) -> ContextBudget:
        """A budget with a reserve fitted to the window size (an eighth, 1 K to 8 K tokens).

        Args:
            context_tokens: The model's context window.
            tool_output_share: Share of the input one tool output may take.

        Returns:
            The budget.
        """
        reserve = min(8192, max(1024, context_tokens // 8))
        return cls(context_tokens, reserve, tool_output_share)

    @classmethod
    def from_settings(cls, settings: Settings, context_tokens: int) -> ContextBudget:
        """The budget for a model with a ``context_tokens`` window under these settings.

        The reserve is the longest answer asked for (``llm_max_output_tokens``), at most a quarter
        of the window; one tool output may take ``assistant_tool_output_share`` of the rest.

        Args:
            settings: Server settings.
            context_tokens: The model's window (``tend.assistant.llm.model_context_tokens``).

        Returns:
            The budget.
        """
        reserve = min(settings.llm_max_output_tokens, max(1024, context_tokens // 4))
        return cls(context_tokens, reserve, settings.assistant_tool_output_share)

    @property
    def input_tokens(self) -> int:
        """Tokens a request (instructions, tools and messages) may hold."""
        return self.context_tokens - self.reserve_for_output

    @property
    def tool_output_tokens(self) -> int:
        """Tokens one tool output may take before it is cut to head and tail."""
        return max(256, int(self.input_tokens * self.tool_output_share))

    @property
    def compaction_threshold(self) -> int:
        """Request size above which older turns are summarised."""
        return int(self.input_tokens * self.compact_at)

    @property
    def compaction_target(self) -> int:
        """Request size compaction aims for, leaving room for the turns to come."""
        return int(self.input_tokens * self.compact_to)


def estimate_tools(tools: Sequence[Any], counter: TokenCounter | None = None) -> int:
    """Estimate the tokens of tool definitions (name, description, JSON schema) in a request.

    Args:
        tools: ``ToolDefinition`` objects (anything with ``name``, ``description``,
            ``parameters_json_schema``).
        counter: A counter to reuse.

    Returns:
        The estimate.
    """
    counter = counter or TokenCounter()
    total = 0
    for tool in tools:
        total += counter.text(str(getattr(tool, "name", "")))
        total += counter.text(str(getattr(tool, "description", "") or ""))
        schema = getattr(tool, "parameters_json_schema", None) or {}
        total += counter.text(json.dumps(schema, sort_keys=True)) + PART_OVERHEAD
    return total


def estimate_part(part: Any, counter: TokenCounter | None = None) -> int:
    """Estimate the tokens of one message part (text, tool call, tool return, summary...).

    Args:
        part: A pydantic-ai request or response part.
        counter: A counter to reuse.

    Returns:
        The estimate, framing included; 1000 for each image or other file.
    """
    counter = counter or TokenCounter()
    total = PART_OVERHEAD
    name = getattr(part, "tool_name", None)
    if isinstance(name, str):
        total += counter.text(name)
    args = getattr(part, "args", None)
    if args is not None:
        total += counter.value(args)
    content = getattr(part, "content", None)
    if isinstance(content, str) or content is None:
        return total + counter.text(content or "")
    if isinstance(content, list | tuple):
        for item in content:
            text = getattr(item, "content", item)
            total += counter.value(text) if isinstance(text, str | dict | list) else 1000
        return total
    return total + counter.value(content)


def estimate_messages(messages: Iterable[Any], counter: TokenCounter | None = None) -> int:
    """Estimate the tokens of a message history as a provider would receive it.

    Args:
        messages: pydantic-ai ``ModelRequest`` / ``ModelResponse`` objects.
        counter: A counter to reuse.

    Returns:
        The estimate.
    """
    counter = counter or TokenCounter()
    return sum(
        PART_OVERHEAD + sum(counter.part(part) for part in message.parts) for message in messages
    )


def estimate_request(
    messages: Iterable[Any],
    *,
    instructions: str | None = None,
    tools: Sequence[Any] = (),
    counter: TokenCounter | None = None,
) -> int:
    """Estimate a whole model request: instructions, tool definitions and messages.

    Args:
        messages: The messages sent.
        instructions: The rendered instructions (system prompt), if any.
        tools: The tool definitions sent.
        counter: A counter to reuse.

    Returns:
        The estimate.
    """
    counter = counter or TokenCounter()
    return (
        counter.text(instructions or "")
        + estimate_tools(tools, counter)
        + estimate_messages(messages, counter)
    )
