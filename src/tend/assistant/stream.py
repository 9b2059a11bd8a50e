"""Map pydantic-ai's run events to the assistant's events, restoring anonymised names.

With anonymisation on, the model writes pseudonyms (``host-3``); users must read the real names.
Text arrives in deltas that may split a pseudonym, so the mapper holds back a trailing partial
word until the next delta (or the end of the response) shows where it ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic_ai import DeferredToolRequests
from pydantic_ai.messages import (
    DeferredToolRequestsEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    OutputToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolReturnPart,
)
from pydantic_core import to_jsonable_python

from tend.assistant.events import (
    ApprovalRequiredEvent,
    AssistantEvent,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from tend.assistant.redact import Redactor
from tend.assistant.report import InvestigationReport

_TRAILING_WORD = re.compile(r"[\w.:-]+$")


class StreamMapper:
    """Turns one run's pydantic-ai events into assistant events."""

    def __init__(self, redactor: Redactor | None) -> None:
        """Create a mapper for one run.

        Args:
            redactor: The conversation's redactor (restores pseudonyms), if any.
        """
        self._redactor = redactor
        self._held = ""

    def _restore(self, text: str) -> str:
        return self._redactor.restore(text) if self._redactor is not None else text

    def _restore_value(self, value: Any) -> Any:
        return self._redactor.restore_value(value) if self._redactor is not None else value

    def _text(self, delta: str) -> Iterator[AssistantEvent]:
        if not delta:
            return
        if self._redactor is None or not self._redactor.anonymise:
            yield TextEvent(delta=delta)
            return
        text = self._held + delta
        tail = _TRAILING_WORD.search(text)
        self._held = tail.group() if tail else ""
        ready = text[: len(text) - len(self._held)]
        if ready:
            yield TextEvent(delta=self._restore(ready))

    def flush(self) -> Iterator[AssistantEvent]:
        """Emit text held back at the end of a model response."""
        if self._held:
            held, self._held = self._held, ""
            yield TextEvent(delta=self._restore(held))

    def model_event(self, event: object) -> Iterator[AssistantEvent]:
        """Map a model response stream event (text starts and deltas)."""
        if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
            yield from self._text(event.part.content)
        elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
            yield from self._text(event.delta.content_delta)

    def tool_event(self, event: object) -> Iterator[AssistantEvent]:
        """Map a tool handling event (calls, results, calls deferred for approval)."""
        if isinstance(event, FunctionToolCallEvent):
            yield ToolCallEvent(
                tool_call_id=event.part.tool_call_id,
                tool=event.part.tool_name,
                args=self._restore_value(event.part.args_as_dict()),
            )
        elif isinstance(event, FunctionToolResultEvent):
            yield self._result(event.part)
        elif isinstance(event, OutputToolResultEvent) and event.part.outcome != "success":
            yield self._result(event.part)  # a report sent back to be fixed
        elif isinstance(event, DeferredToolRequestsEvent):
            yield from self.approvals(event.requests)

    def _result(self, part: ToolReturnPart) -> ToolResultEvent:
        content = to_jsonable_python(part.content, fallback=str)
        if part.outcome == "retried":
            status: Any = "retry"
        elif part.outcome != "success":
            status = "error"
        elif isinstance(content, dict) and content.get("status") in (
            "success",
            "error",
            "no_data",
            "approval_required",
        ):
            status = content["status"]
        else:
            status = "success"
        return ToolResultEvent(
            tool_call_id=part.tool_call_id, tool=part.tool_name, status=status, result=content
        )

    def approvals(self, requests: DeferredToolRequests) -> Iterator[AssistantEvent]:
        """Per deferred call: its ``tool_result`` (``approval_required``), then the approval."""
        for call in requests.calls:
            meta = requests.metadata.get(call.tool_call_id) or {}
            if not meta.get("approval_id"):
                continue
            yield ToolResultEvent(
                tool_call_id=call.tool_call_id,
                tool=call.tool_name,
                status="approval_required",
                result={
                    "status": "approval_required",
                    "message": "waiting for a human's approval; it has not run",
                    **meta,
                },
            )
            yield ApprovalRequiredEvent(
                tool_call_id=call.tool_call_id,
                approval_id=meta["approval_id"],
                argv=list(meta.get("argv", [])),
                hosts=list(meta.get("hosts", [])),
                risk=str(meta.get("risk", "change")),
                reason=str(meta.get("reason", "")),
                four_eyes=bool(meta.get("four_eyes", False)),
                expires_at=meta.get("expires_at"),
            )

    def restore_report(self, report: InvestigationReport) -> InvestigationReport:
        """The report with real host names and addresses in place of pseudonyms."""
        if self._redactor is None or not self._redactor.anonymise:
            return report
        return InvestigationReport.model_validate(
            self._restore_value(report.model_dump(mode="json"))
        )
