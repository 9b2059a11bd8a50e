"""The loop guard: a model repeating the same tool call is told so, then stopped.

Identical calls (same tool, same validated arguments) are allowed ``repeats`` times in one run —
a value may legitimately be read again after some time. The next identical call is not run: the
model is asked to use the earlier result or try something else. If it insists once more, the run
stops with a clear error instead of spending the user's tokens in a loop.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import ModelRetry, RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.exceptions import AgentRunError
from pydantic_ai.messages import ToolCallPart
from pydantic_ai.tools import ToolDefinition

from tend.assistant.deps import AssistantDeps


class LoopDetected(AgentRunError):
    """The model kept making the same tool call; the run stops."""


def call_key(tool_name: str, args: Any) -> str:
    """A stable key for a tool call: its name and its arguments as canonical JSON."""
    return tool_name + ":" + json.dumps(args, sort_keys=True, default=str, separators=(",", ":"))


@dataclass
class ToolCallGuard(AbstractCapability[AssistantDeps]):
    """Counts identical tool calls per run; nudges, then stops, a model that loops.

    Attributes:
        repeats: Identical calls allowed per run before the guard steps in.
    """

    repeats: int = 3
    _seen: Counter[str] = field(default_factory=Counter, repr=False)

    async def for_run(self, ctx: RunContext[AssistantDeps]) -> ToolCallGuard:
        """A fresh counter for every run (an agent serves many runs)."""
        return ToolCallGuard(repeats=self.repeats)

    async def before_tool_execute(
        self,
        ctx: RunContext[AssistantDeps],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: Any,
    ) -> Any:
        """Count the call; refuse it past ``repeats``, stop the run one call later.

        Raises:
            ModelRetry: The call repeats an earlier one too often (not run).
            LoopDetected: The model ignored that and repeated it again.
        """
        key = call_key(call.tool_name, args)
        self._seen[key] += 1
        count = self._seen[key]
        if count > self.repeats + 1:
            raise LoopDetected(
                f"the model called {call.tool_name} with the same arguments {count} times;"
                " the investigation was stopped"
            )
        if count > self.repeats:
            raise ModelRetry(
                f"You already called {call.tool_name} with exactly these arguments"
                f" {count - 1} times and the result will not change. Use the earlier result,"
                " try something different, or submit your report."
            )
        return args

    @classmethod
    def get_serialization_name(cls) -> str | None:
        """Not part of agent specs (it belongs to tend's agent only)."""
        return None
