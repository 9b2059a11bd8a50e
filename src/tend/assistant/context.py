"""The context capability: what the model is sent stays within budget and free of secrets.

``ContextCapability`` is a pydantic-ai capability. Put it LAST in the agent's (or run's)
``capabilities=[...]`` so its ``prepare_model_request`` runs after every other capability's and
sees the final request. For each request it

1. compacts older turns into a summary when the request passes the budget's threshold
   (``Compactor``; the summariser defaults to the serving model with a short prompt);
2. cuts any part still too big for the window (a safety net: history loaded from elsewhere);
3. redacts every part of every message and the instructions (``Redactor``) — the model never
   sees a secret, and with anonymisation on, never a real host name or address.

After each tool call it cuts an output over the budget's per-output share to head + tail + note,
keeping the whole under a handle (``OutputStore``), and it contributes the ``read_output`` tool
that pages through it. Tool arguments the model writes with pseudonyms are restored before the
tool sees them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import (
    BaseToolCallPart,
    BaseToolReturnPart,
    ModelMessage,
    ModelRequest,
    TextContent,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestContext
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset
from pydantic_core import to_json, to_jsonable_python

from tend.assistant.compaction import Compactor, Summariser, model_summariser
from tend.assistant.outputs import FittedOutput, OutputOwner, OutputStore, fit_output
from tend.assistant.redact import Redactor
from tend.assistant.tokens import ContextBudget, TokenCounter, estimate_tools
from tend.errors import NotFound

READ_OUTPUT = "read_output"
_SAFETY_ROUNDS = 32
_MEMORY = 8192


def _redact_content(content: Any, redactor: Redactor) -> Any:
    if isinstance(content, str):
        return redactor.redact(content)
    if isinstance(content, list | tuple) and any(isinstance(i, str | TextContent) for i in content):
        out: list[Any] = []
        for item in content:
            if isinstance(item, str):
                out.append(redactor.redact(item))
            elif isinstance(item, TextContent):
                out.append(dataclasses.replace(item, content=redactor.redact(item.content)))
            else:
                out.append(item)  # images and files: nothing textual to redact
        return out
    return redactor.redact_value(content)


def _redact_args(args: Any, redactor: Redactor) -> Any:
    if isinstance(args, str):
        try:
            parsed = json.loads(args)
        except ValueError:
            return redactor.redact(args)
        redacted = redactor.redact_value(parsed)
        return args if redacted is parsed else json.dumps(redacted)
    return redactor.redact_value(args)


def _redact_part(part: Any, redactor: Redactor) -> Any:
    changes: dict[str, Any] = {}
    if isinstance(part, BaseToolCallPart) and (
        (args := _redact_args(part.args, redactor)) is not part.args
    ):
        changes["args"] = args
    content = getattr(part, "content", None)
    if content is not None and (new := _redact_content(content, redactor)) is not content:
        changes["content"] = new
    return dataclasses.replace(part, **changes) if changes else part


def redact_messages(
    messages: list[ModelMessage],
    redactor: Redactor,
    memory: dict[int, tuple[Any, Any]] | None = None,
) -> list[ModelMessage]:
    """Copies of ``messages`` with every text part, tool argument and tool result redacted.

    The originals (the run's history) are not modified.

    Args:
        messages: The messages about to be sent.
        redactor: The conversation's redactor.
        memory: Parts already redacted, by identity (a history is re-sent every step).

    Returns:
        The messages to send.
    """
    memory = {} if memory is None else memory
    out: list[ModelMessage] = []
    for message in messages:
        changes: dict[str, Any] = {}
        parts = [_remembered(part, redactor, memory) for part in message.parts]
        if any(new is not old for new, old in zip(parts, message.parts, strict=True)):
            changes["parts"] = parts
        if isinstance(message, ModelRequest) and message.instructions:
            instructions = redactor.redact(message.instructions)
            if instructions is not message.instructions:
                changes["instructions"] = instructions
        out.append(dataclasses.replace(message, **changes) if changes else message)
    return out


def _remembered(part: Any, redactor: Redactor, memory: dict[int, tuple[Any, Any]]) -> Any:
    found = memory.get(id(part))
    if found is not None and found[0] is part:
        return found[1]
    if len(memory) >= _MEMORY:
        memory.clear()
    redacted = _redact_part(part, redactor)
    memory[id(part)] = (part, redacted)
    return redacted


def _shrinkable(part: Any) -> bool:
    return isinstance(part, BaseToolReturnPart | UserPromptPart) and not isinstance(
        part.content, list
    )


@dataclass
class ContextCapability(AbstractCapability[Any]):
    """Keeps every model request within ``budget`` and free of secrets (see the module doc).

    Attributes:
        budget: The model's context budget.
        redactor: The conversation's redactor (keeps its pseudonyms across runs).
        summariser: Summarises older turns; ``None`` asks the serving model.
        store: Where whole outputs are kept; ``None`` cuts them without a handle.
        owner: Whose outputs they are (needed with ``store``).
        compactor: A compactor kept per conversation to reuse its summary; ``None`` makes one
            per run.
        read_output_tool: Contribute the ``read_output`` paging tool (needs ``store`` and
            ``owner``).
    """

    budget: ContextBudget
    redactor: Redactor = field(default_factory=Redactor)
    summariser: Summariser | None = None
    store: OutputStore | None = None
    owner: OutputOwner | None = None
    compactor: Compactor | None = None
    read_output_tool: bool = True
    counter: TokenCounter = field(default_factory=TokenCounter)
    handles: list[str] = field(default_factory=list)
    """Handles of the outputs this run kept (for the caller's events and transcript)."""
    redacted_parts: dict[int, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    async def for_run(self, ctx: RunContext[Any]) -> ContextCapability:
        """A copy with its own per-run state (the redactor and compactor stay shared)."""
        return dataclasses.replace(self, counter=TokenCounter(), handles=[], redacted_parts={})

    def get_toolset(self) -> AbstractToolset[Any] | None:
        """The ``read_output`` tool, when outputs are kept."""
        if not (self.read_output_tool and self.store is not None and self.owner is not None):
            return None
        toolset: FunctionToolset[Any] = FunctionToolset()
        toolset.add_function(self.read_output, name=READ_OUTPUT, takes_ctx=False)
        return toolset

    async def read_output(self, handle: str, offset: int = 0) -> dict[str, Any]:
        """Read part of a tool output that was cut to fit the context.

        Use the handle and offset from a note like
        `[… 48.9 MB / 1,234 lines removed; page with read_output(handle="…", offset=…)]`.
        The page starts at the line holding `offset`; call again with `next_offset` for more
        (it is null at the end).

        Args:
            handle: The handle named in the note.
            offset: Byte offset to read from.
        """
        if self.store is None or self.owner is None:  # the tool exists only with both
            return {"status": "error", "message": "outputs are not kept in this conversation"}
        limit = min(self.store.max_page_bytes, self.budget.tool_output_tokens * 3)
        try:
            for _ in range(4):
                page = await self.store.page(
                    handle,
                    user_id=self.owner.user_id,
                    conversation_id=self.owner.conversation_id,
                    offset=offset,
                    limit=limit,
                )
                if self.counter.text(page.text) <= self.budget.tool_output_tokens:
                    break
                limit //= 2
        except NotFound as exc:
            return {"status": "error", "message": str(exc.detail)}
        if not page.text:
            return {
                "status": "no_data",
                "message": "past the end of the output",
                **page.model_dump(),
            }
        return {"status": "success", **page.model_dump()}

    # --- tool results ---

    async def _fit_text(self, text: str, max_tokens: int, label: str) -> FittedOutput:
        if self.store is not None and self.owner is not None:
            fitted = await self.store.fit(text, max_tokens, self.owner, label=label)
            if fitted.handle:
                self.handles.append(fitted.handle)
            return fitted
        return fit_output(text, max_tokens)

    async def fit_result(self, result: Any, label: str) -> Any:
        """Cut a tool result to the per-output share: a string, or the long strings inside a value.

        Args:
            result: What the tool returned.
            label: The tool's name.

        Returns:
            The result unchanged when it fits; otherwise the fitted text or JSON-like value.
        """
        allowance = self.budget.tool_output_tokens
        if isinstance(result, str):
            return (await self._fit_text(result, allowance, label)).text
        if type(result).__module__.startswith("pydantic_ai"):
            return result  # ToolReturn, files, images: left as the tool shaped them
        try:
            plain = to_jsonable_python(result)
        except Exception:  # not JSON-able: pydantic-ai will str() it
            return result
        total = self.counter.value(plain)
        if total <= allowance + max(256, allowance // 4):
            return result  # within its share (tools that fit their own text come in just over)
        leaves: list[int] = []
        _collect_strings(plain, leaves, self.counter)
        room = max(256, allowance - (total - sum(leaves)))
        shares = _water_fill(leaves, room)
        return await self._rebuild(plain, iter(shares), label)

    async def _rebuild(self, value: Any, shares: Any, label: str) -> Any:
        if isinstance(value, str):
            share = next(shares)
            return value if share is None else (await self._fit_text(value, share, label)).text
        if isinstance(value, dict):
            return {k: await self._rebuild(v, shares, label) for k, v in value.items()}
        if isinstance(value, list):
            return [await self._rebuild(v, shares, label) for v in value]
        return value

    async def after_tool_execute(
        self,
        ctx: RunContext[Any],
        *,
        call: Any,
        tool_def: ToolDefinition,
        args: dict[str, Any],
        result: Any,
    ) -> Any:
        """Cut an output over the per-output share, keeping the whole under a handle."""
        if tool_def.name == READ_OUTPUT:
            return result
        return await self.fit_result(result, tool_def.name)

    async def before_tool_validate(
        self,
        ctx: RunContext[Any],
        *,
        call: Any,
        tool_def: ToolDefinition,
        args: str | dict[str, Any],
    ) -> str | dict[str, Any]:
        """Give the tool real host names and addresses where the model wrote pseudonyms."""
        if not self.redactor.mapping:
            return args
        if isinstance(args, str):
            try:
                return dict(self.redactor.restore_value(json.loads(args)))
            except (ValueError, TypeError):
                return self.redactor.restore(args)
        return dict(self.redactor.restore_value(args))

    # --- requests ---

    def _fixed_tokens(self, request_context: ModelRequestContext) -> int:
        params = request_context.model_request_parameters
        instructions = "\n".join(p.content for p in params.instruction_parts or [])
        tools = [*params.function_tools, *params.output_tools]
        return self.counter.text(instructions) + estimate_tools(tools, self.counter)

    def _shrink(self, messages: list[ModelMessage], fixed: int) -> list[ModelMessage]:
        """Cut the biggest parts until the request fits the input budget (no handle kept)."""
        limit = self.budget.input_tokens
        for _ in range(_SAFETY_ROUNDS):
            sizes = [
                (self.counter.part(part), i, j)
                for i, message in enumerate(messages)
                for j, part in enumerate(message.parts)
            ]
            total = fixed + sum(size for size, _, _ in sizes) + 4 * len(messages)
            candidates = [s for s in sizes if _shrinkable(messages[s[1]].parts[s[2]])]
            if total <= limit or not candidates:
                return messages
            size, i, j = max(candidates)
            target = max(128, size - (total - limit) - 64)
            if target >= size:
                return messages
            message: Any = messages[i]
            part: Any = message.parts[j]
            text = part.content if isinstance(part.content, str) else to_json(part.content).decode()
            fitted = dataclasses.replace(part, content=fit_output(text, target).text)
            parts = [*message.parts[:j], fitted, *message.parts[j + 1 :]]
            messages = [
                *messages[:i],
                dataclasses.replace(message, parts=parts),
                *messages[i + 1 :],
            ]
        return messages

    async def prepare_model_request(
        self, ctx: RunContext[Any], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        """Compact, cut to the window, and redact the request about to be sent."""
        fixed = self._fixed_tokens(request_context)
        if self.compactor is None:
            summariser = self.summariser or model_summariser(request_context.model)
            self.compactor = Compactor(
                self.budget, summariser, self.redactor.redact, counter=self.counter
            )
        messages = await self.compactor.view(request_context.messages, fixed_tokens=fixed)
        messages = self._shrink(messages, fixed)
        request_context.messages = redact_messages(messages, self.redactor, self.redacted_parts)
        params = request_context.model_request_parameters
        if params.instruction_parts:
            parts = [
                dataclasses.replace(p, content=self.redactor.redact(p.content))
                for p in params.instruction_parts
            ]
            request_context.model_request_parameters = dataclasses.replace(
                params, instruction_parts=parts
            )
        return request_context

    @classmethod
    def get_serialization_name(cls) -> str | None:
        """Not part of agent specs (it holds callables and a database)."""
        return None


def _collect_strings(value: Any, sizes: list[int], counter: TokenCounter) -> None:
    if isinstance(value, str):
        sizes.append(counter.text(value))
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, sizes, counter)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, sizes, counter)


def _water_fill(sizes: list[int], room: int) -> list[int | None]:
    """Share ``room`` tokens among strings: small ones stay whole, big ones get equal shares.

    Returns, per string, ``None`` (keep whole) or the tokens it may keep.
    """
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    shares: list[int | None] = [None] * len(sizes)
    left = room
    for rank, i in enumerate(order):
        fair = left // (len(sizes) - rank)
        if sizes[i] <= fair:
            left -= sizes[i]
        else:
            shares[i] = max(64, fair)
            left -= fair
    return shares
