"""A running tend with the assistant wired to a scripted model: ask, then look at what happened."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_ai.messages import ModelMessage

from tend.assistant.agent import build_agent, run_investigation
from tend.assistant.deps import AssistantDeps
from tend.assistant.events import (
    ApprovalRequiredEvent,
    AssistantEvent,
    DoneEvent,
    ErrorEvent,
    TextEvent,
    ToolResultEvent,
)
from tend.assistant.outcomes import RunLimits
from tend.assistant.outputs import OutputStore
from tend.assistant.redact import Redactor
from tend.assistant.report import InvestigationReport
from tend.assistant.tokens import ContextBudget
from tend.auth.models import Role
from tend.execution.models import AuditRecord
from tend.execution.schemas import RunResponse
from tend.execution.service import Caller
from tests.assistant.scripted import ScriptedModel
from tests.conftest import Harness


@dataclass
class Outcome:
    """Everything one turn streamed, and the model that was scripted."""

    events: list[AssistantEvent]
    done: DoneEvent
    script: ScriptedModel

    def results(self, tool: str | None = None) -> list[ToolResultEvent]:
        """Tool results (of one tool), in order."""
        return [
            e
            for e in self.events
            if isinstance(e, ToolResultEvent) and (tool is None or e.tool == tool)
        ]

    def result(self, tool: str) -> dict[str, Any]:
        """The only result of ``tool`` as plain data."""
        [found] = self.results(tool)
        assert isinstance(found.result, dict), found
        return found.result

    @property
    def approvals(self) -> list[ApprovalRequiredEvent]:
        """The ``approval_required`` events."""
        return [e for e in self.events if isinstance(e, ApprovalRequiredEvent)]

    @property
    def errors(self) -> list[ErrorEvent]:
        """The ``error`` events."""
        return [e for e in self.events if isinstance(e, ErrorEvent)]

    @property
    def text(self) -> str:
        """The streamed text, joined."""
        return "".join(e.delta for e in self.events if isinstance(e, TextEvent))

    @property
    def report(self) -> InvestigationReport:
        """The final report (the turn must have completed)."""
        assert self.done.status == "completed", (self.done.status, self.errors)
        assert self.done.report is not None
        return self.done.report


@dataclass
class AssistantRig:
    """Users, dependencies and turns against a started harness."""

    harness: Harness
    tmp_path: Path
    budget_tokens: int = 32_000
    _callers: dict[Role, Caller] = field(default_factory=dict)

    async def caller(self, role: Role = Role.OPERATOR) -> Caller:
        """A user with ``role`` (one per role), as the execution service sees it."""
        if role not in self._callers:
            user = await self.harness.user(role)
            self._callers[role] = Caller(user_id=user.id, username=user.username, role=role)
        return self._callers[role]

    async def deps(
        self, role: Role = Role.OPERATOR, *, redactor: Redactor | None = None
    ) -> AssistantDeps:
        """The dependencies of one turn for a user with ``role``."""
        context = self.harness.context
        return AssistantDeps.from_context(
            context,
            await self.caller(role),
            outputs=OutputStore(context.database),
            budget=ContextBudget.for_window(self.budget_tokens),
            redactor=redactor,
            conversation_id="test-conversation",
        )

    async def ask(
        self,
        script: ScriptedModel,
        prompt: str | None = "What is wrong?",
        *,
        role: Role = Role.OPERATOR,
        history: Sequence[ModelMessage] = (),
        runs: Mapping[str, RunResponse] | None = None,
        limits: RunLimits | None = None,
        deps: AssistantDeps | None = None,
    ) -> Outcome:
        """Run one turn with the scripted model and collect its events."""
        agent = build_agent(script.model)
        done, events = await run_investigation(
            agent,
            deps or await self.deps(role),
            prompt,
            history=history,
            runs=runs,
            limits=limits,
        )
        return Outcome(events, done, script)

    async def admin_headers(self) -> dict[str, str]:
        """Headers of the first admin, signed in with the password the first start printed."""
        response = await self.harness.client.post(
            "/api/v1/auth/token",
            data={"username": "admin", "password": self.harness.admin_password},
        )
        assert response.status_code == 200, response.text
        return self.harness.bearer(response.json()["access_token"])

    async def audit(self, **filters: Any) -> list[AuditRecord]:
        """Audit records, newest first (filters as ``AuditLog.query``)."""
        return await self.harness.context.execution.audit.query(limit=1000, **filters)
