"""What every tool of one investigation needs: who asks, tend's services, the context budget.

An ``AssistantDeps`` lives for one conversation turn. Tools act with ``caller`` — the user who
asked, with the role in force for the request — so the assistant can never do more than that
user could through the API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tend.assistant.compaction import Compactor, Summariser
from tend.assistant.limits import UsageLimiter
from tend.assistant.outputs import OutputOwner, OutputStore
from tend.assistant.redact import Redactor
from tend.assistant.results import Output
from tend.assistant.tokens import ContextBudget
from tend.db import Database
from tend.diagnostics.runner import diagnose
from tend.diagnostics.schemas import DiagnosisReport
from tend.execution.service import Caller, ExecutionService
from tend.execution.targets import HostSnapshot
from tend.monitoring.service import MonitoringService

if TYPE_CHECKING:
    from tend.context import AppContext

Diagnose = Callable[
    [ExecutionService, "str | HostSnapshot", Caller, "Sequence[str] | None"],
    Awaitable[DiagnosisReport],
]
MIN_OUTPUT_TOKENS = 128
"""No output is cut below this, however many hosts share one result."""


@dataclass(slots=True)
class AssistantDeps:
    """The dependencies of one investigation run (pydantic-ai's ``deps``).

    Attributes:
        caller: The asking user; every command runs with this user's role.
        execution: The one execution path (policy, approvals, audit, transports).
        database: The database (inventory, approvals).
        monitoring: Latest values and series of every host.
        outputs: Keeps whole tool outputs behind handles the model can page through.
        budget: The model's context budget (how much one tool output may take).
        redactor: The conversation's redactor: secrets never reach the provider; with
            anonymisation on, host names and addresses neither (restored for the user).
        conversation_id: The conversation this run belongs to.
        hosts: Hosts the conversation is about (a hint in the instructions).
        limiter: Per-user daily token and cost limits, if configured.
        compactor: The conversation's compactor (keeps its summary across turns); ``None``
            makes one per run.
        summariser: Summarises older turns; ``None`` asks the serving model.
        diagnose: The diagnostics runner.
    """

    caller: Caller
    execution: ExecutionService
    database: Database
    monitoring: MonitoringService
    outputs: OutputStore
    budget: ContextBudget
    redactor: Redactor = field(default_factory=Redactor)
    conversation_id: str | None = None
    hosts: tuple[str, ...] = ()
    limiter: UsageLimiter | None = None
    compactor: Compactor | None = None
    summariser: Summariser | None = None
    diagnose: Diagnose = field(default=diagnose)

    @classmethod
    def from_context(
        cls,
        context: AppContext,
        caller: Caller,
        *,
        outputs: OutputStore,
        budget: ContextBudget,
        redactor: Redactor | None = None,
        conversation_id: str | None = None,
        hosts: Sequence[str] = (),
        limiter: UsageLimiter | None = None,
        compactor: Compactor | None = None,
    ) -> AssistantDeps:
        """Build the dependencies from the running app's context.

        Args:
            context: The app context.
            caller: The asking user.
            outputs: The output store (for paging handles).
            budget: The model's context budget.
            redactor: The conversation's redactor (default: secrets only, no anonymising).
            conversation_id: The conversation.
            hosts: Hosts the conversation is about.
            limiter: Per-user daily limits.
            compactor: The conversation's compactor.

        Returns:
            The dependencies.
        """
        return cls(
            caller=caller,
            execution=context.execution,
            database=context.database,
            monitoring=context.monitoring,
            outputs=outputs,
            budget=budget,
            redactor=redactor or Redactor(),
            conversation_id=conversation_id,
            hosts=tuple(hosts),
            limiter=limiter,
            compactor=compactor,
        )

    @property
    def owner(self) -> OutputOwner:
        """Who may page the outputs this run keeps: the asking user, in this conversation."""
        return OutputOwner(user_id=self.caller.user_id, conversation_id=self.conversation_id)

    async def fit(self, text: str, *, share: float = 1.0, label: str | None = None) -> Output:
        """Fit one output into its share of the tool-output budget, keeping the whole of it.

        Args:
            text: The whole output.
            share: The part of one tool output's budget this text may take (``0 < share <= 1``).
            label: What produced it (the tool), recorded with a kept output.

        Returns:
            The text whole, or head + a note naming the handle + tail.
        """
        tokens = max(MIN_OUTPUT_TOKENS, int(self.budget.tool_output_tokens * share))
        fitted = await self.outputs.fit(text, tokens, self.owner, label=label)
        return Output(
            text=fitted.text,
            total_bytes=fitted.total_bytes,
            cut=fitted.truncated,
            handle=fitted.handle,
        )
