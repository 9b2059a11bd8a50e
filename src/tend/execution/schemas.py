"""Request and response models of command execution, approvals, policy checks and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tend.execution.policy import Risk, validate_argv

Argv = Annotated[
    list[str],
    Field(min_length=1, max_length=4096, description="the command as an argv list, never a string"),
    AfterValidator(validate_argv),
]
Target = Annotated[
    str,
    Field(
        min_length=1,
        max_length=70,
        pattern=r"^(all|tag:[a-z0-9][a-z0-9_.-]{0,62}|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$",
        description="a host name, 'tag:NAME' or 'all'",
    ),
]


class RunRequest(BaseModel):
    """Run one argv on a selection of hosts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    argv: Argv
    targets: Annotated[list[Target], Field(min_length=1, max_length=1000)]
    timeout: Annotated[float, Field(gt=0, le=86400, description="per-host timeout, s")] = 60.0
    reason: Annotated[str | None, Field(max_length=2000)] = None
    run_async: bool = Field(
        default=False,
        alias="async",
        description="run a read as a background job: 202 with the job id",
    )


class PolicyCheckRequest(BaseModel):
    """Ask how the policy would judge an argv, without running anything."""

    model_config = ConfigDict(extra="forbid")

    argv: Argv
    host: Annotated[str | None, Field(max_length=63)] = None


class PolicyDecisionPublic(BaseModel):
    """The policy's verdict."""

    risk: Risk
    reason: str
    command: str
    wrappers: list[str]
    rule: str | None
    host: str | None = None
    approval_required: bool
    four_eyes: bool = False


class HostRunResult(BaseModel):
    """What one host did with the command."""

    host: str
    status: Literal["ok", "failed", "timeout", "error"]
    exit_code: int | None = None
    signal: str | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration: float = 0.0
    error_kind: str | None = None
    error: str | None = None


class RunResponse(BaseModel):
    """The outcome of a run across its hosts."""

    run_id: str
    risk: Risk
    reason: str
    ok: bool
    results: list[HostRunResult]


class ApprovalPending(BaseModel):
    """A change request now waiting for a human (202)."""

    approval_id: str
    status: Literal["pending"] = "pending"
    risk: Risk
    reason: str
    hosts: list[str]
    four_eyes: bool
    expires_at: datetime


class ApprovalPublic(BaseModel):
    """An approval request and its decision."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    requester: str
    argv: list[str]
    targets: list[str]
    hosts: list[str]
    reason: str | None
    risk: Risk
    policy_reason: str
    four_eyes: bool
    timeout: float
    created_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    run_id: str | None


class ApprovalDecision(BaseModel):
    """An approver's optional note."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str | None, Field(max_length=2000)] = None


class ApprovalOutcome(BaseModel):
    """The decided approval and, when approved, the run it caused."""

    approval: ApprovalPublic
    run: RunResponse | None = None


class AuditRecordPublic(BaseModel):
    """One audit record."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    event: str
    actor: str
    actor_role: str | None
    host: str | None
    argv: list[str] | None
    risk: str | None
    detail: str | None
    approval_id: str | None
    run_id: str | None
    exit_code: int | None
    signal: str | None
    duration: float | None
    stdout_bytes: int | None
    stderr_bytes: int | None
    stdout_sha256: str | None
    stderr_sha256: str | None
    prev_hash: str
    hash: str


class AuditVerifyResponse(BaseModel):
    """Whether the audit chain is intact."""

    ok: bool
    records: int
    first_bad_id: int | None = None
    reason: str | None = None


class RunEvent(BaseModel):
    """One line of a streamed run (NDJSON)."""

    event: Literal["start", "host", "done"]
    run_id: str
    data: dict[str, Any]
