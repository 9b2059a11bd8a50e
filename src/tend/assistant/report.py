"""The investigation report: what the model submits, and the judged report users receive.

The model fills a draft (summary, findings with evidence, proposed actions as argv); tend then
judges every proposed action with the execution policy for the asking user and the named host.
The risk on a proposed action always comes from the policy, never from the model, and nothing in
a report is ever run: a proposal becomes a command only when a user requests it through the
execution path (policy, approval, audit) like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tend.diagnostics.findings import Severity
from tend.errors import NotFound
from tend.execution.policy import InvalidArgvError, Risk, validate_argv
from tend.execution.service import Caller, ExecutionService
from tend.execution.targets import HostSnapshot, hosts_by_name

MAX_SUMMARY = 20_000
MAX_FINDINGS = 30
MAX_ACTIONS = 20

Argv = Annotated[
    list[str],
    Field(min_length=1, max_length=256, description="the command as an argv list, never a string"),
    AfterValidator(validate_argv),
]
HostName = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
]


class ReportFinding(BaseModel):
    """One thing the investigation established, with the evidence that shows it."""

    model_config = ConfigDict(extra="ignore")

    title: Annotated[str, Field(min_length=1, max_length=300)]
    severity: Severity = Field(description="ok, info, warning or critical")
    evidence: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=2000)]],
        Field(
            min_length=1,
            max_length=20,
            description="tool output lines or values that show it, quoted as seen",
        ),
    ]


class ActionProposal(BaseModel):
    """A command the model suggests a human could run; it is judged, never run by the model."""

    # Extra keys (a "risk" the model made up, for one) are dropped: the policy decides risk.
    model_config = ConfigDict(extra="ignore")

    host: HostName = Field(description="the inventory host it would run on")
    argv: Argv
    why: Annotated[str, Field(min_length=1, max_length=1000, description="what it would fix")]


class ProposedAction(BaseModel):
    """A proposed command with the policy's verdict for the asking user and the host."""

    host: str
    argv: list[str]
    why: str
    risk: Risk = Field(description="the policy's verdict: read, change or forbidden")
    policy_reason: str = Field(description="why the policy judged it so")
    approval_required: bool = Field(description="running it needs a human's approval")
    four_eyes: bool = Field(default=False, description="the approver must be someone else")


class InvestigationReport(BaseModel):
    """The outcome of an investigation: a summary, findings with evidence, proposed actions."""

    summary: Annotated[str, Field(min_length=1, max_length=MAX_SUMMARY)]
    findings: list[ReportFinding] = Field(default_factory=list, max_length=MAX_FINDINGS)
    proposed_actions: list[ProposedAction] = Field(default_factory=list, max_length=MAX_ACTIONS)


class ReportRejected(ValueError):
    """A draft the model must fix (unknown host, argv the policy cannot judge)."""


async def judge_report(
    execution: ExecutionService,
    caller: Caller,
    *,
    summary: str,
    findings: Sequence[ReportFinding] = (),
    proposed_actions: Sequence[ActionProposal] = (),
) -> InvestigationReport:
    """Judge each proposed action with the policy and build the report.

    Args:
        execution: The execution service (its policy judges; nothing runs).
        caller: The asking user (the policy's role).
        summary: The model's summary.
        findings: The model's findings.
        proposed_actions: The model's proposals.

    Returns:
        The validated report, every action carrying the policy's risk.

    Raises:
        ReportRejected: A proposal names a host not in the inventory or an argv the policy
            cannot judge (the model is asked to fix it).
    """
    names = sorted({action.host for action in proposed_actions})
    hosts: dict[str, HostSnapshot] = {}
    if names:
        async with execution.database.session() as session:
            hosts = await hosts_by_name(session, names)
    missing = [name for name in names if name not in hosts]
    if missing:
        raise ReportRejected(
            f"proposed actions name host(s) not in the inventory: {', '.join(missing)};"
            " use list_hosts to see the hosts"
        )
    judged = []
    for action in proposed_actions:
        try:
            verdict = execution.judge(action.argv, caller.role, [hosts[action.host]])
        except (InvalidArgvError, NotFound) as exc:
            raise ReportRejected(f"proposed action {action.argv!r}: {exc}") from exc
        judged.append(
            ProposedAction(
                host=action.host,
                argv=list(action.argv),
                why=action.why,
                risk=verdict.decision.risk,
                policy_reason=verdict.decision.reason,
                approval_required=verdict.decision.risk is Risk.CHANGE,
                four_eyes=verdict.four_eyes,
            )
        )
    return InvestigationReport(summary=summary, findings=list(findings), proposed_actions=judged)


def report_from_text(text: str) -> InvestigationReport:
    """Wrap a plain-text answer (no report submitted) as a report with only a summary.

    Args:
        text: The model's final text.

    Returns:
        A report whose summary is the text.
    """
    summary = text.strip() or "(no answer)"
    return InvestigationReport(summary=summary[:MAX_SUMMARY])
