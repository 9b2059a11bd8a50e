"""What the assistant's tools return to the model: values with a status, never exceptions.

``status`` is one of ``success`` (it worked), ``error`` (it could not be done; ``message`` says
why, e.g. the policy's reason), ``no_data`` (it worked but there is nothing to show) and
``approval_required`` (a change is waiting for a human; ``approval_id`` names it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tend.diagnostics.findings import Severity
from tend.execution.policy import Risk

ToolStatus = Literal["success", "error", "no_data", "approval_required"]


class ToolResult(BaseModel):
    """Base of every tool result."""

    status: ToolStatus
    message: str | None = Field(default=None, description="why, for error and no_data")


class Output(BaseModel):
    """A command's output as the model sees it: whole, or head + tail with a paging handle."""

    text: str
    total_bytes: int = Field(description="size of the whole output")
    cut: bool = Field(default=False, description="the middle was left out to fit the budget")
    handle: str | None = Field(
        default=None, description="pass to read_output to page through the whole output"
    )


class HostInfo(BaseModel):
    """One inventory host and whether the monitor reaches it."""

    name: str
    address: str
    transport: str
    tags: list[str]
    state: Literal["up", "unreachable", "unknown"]
    since: datetime | None = None
    last_error: str | None = None


class HostsResult(ToolResult):
    """The inventory."""

    hosts: list[HostInfo] = Field(default_factory=list)


class MetricReading(BaseModel):
    """The newest value of one series."""

    name: str
    value: float
    unit: str
    labels: dict[str, str] = Field(default_factory=dict)


class MetricsResult(ToolResult):
    """A host's newest values."""

    host: str
    state: Literal["up", "unreachable", "unknown"] = "unknown"
    collected_at: datetime | None = None
    metrics: list[MetricReading] = Field(default_factory=list)
    info: dict[str, Any] = Field(default_factory=dict)


class SeriesStats(BaseModel):
    """One label set of a metric over the range, summarised."""

    labels: dict[str, str]
    points: int
    min: float
    avg: float
    max: float
    first: float
    last: float
    trend: Literal["rising", "falling", "flat"]
    change: float = Field(description="last minus first")


class SeriesSummaryResult(ToolResult):
    """A metric of a host over a range: min/avg/max/last and the trend, not raw points."""

    host: str
    metric: str
    unit: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    step: int | None = None
    series: list[SeriesStats] = Field(default_factory=list)


class StepProposal(BaseModel):
    """A next step a diagnostics finding proposes, with the policy's verdict (never run)."""

    argv: list[str]
    purpose: str
    risk: Risk | None = None


class DiagnosticFinding(BaseModel):
    """One analyzer finding."""

    analyzer: str
    severity: Severity
    title: str
    evidence: list[str]
    likely_cause: str | None = None
    next_steps: list[StepProposal] = Field(default_factory=list)


class DiagnosticsResult(ToolResult):
    """What the deterministic analyzers found on a host, most severe first."""

    host: str
    worst: Severity | None = None
    run_id: str | None = None
    findings: list[DiagnosticFinding] = Field(default_factory=list)
    probes_not_run: list[str] = Field(default_factory=list)


class HostOutput(BaseModel):
    """What one host did with a command."""

    host: str
    status: Literal["ok", "failed", "timeout", "error"]
    exit_code: int | None = None
    stdout: Output | None = None
    stderr: Output | None = None
    error: str | None = None


class CommandResult(ToolResult):
    """A command through the execution path: ran (``read``), waiting (``change``) or refused."""

    argv: list[str]
    risk: Risk | None = None
    policy_reason: str | None = None
    run_id: str | None = None
    approval_id: str | None = None
    expires_at: datetime | None = None
    hosts: list[HostOutput] = Field(default_factory=list)


class DiskEntry(BaseModel):
    """A directory and the space under it."""

    path: str
    bytes: int


class FilesystemUsage(BaseModel):
    """The filesystem holding a path."""

    filesystem: str
    mount: str
    size_bytes: int
    used_bytes: int
    avail_bytes: int
    used_percent: float


class DiskUsageResult(ToolResult):
    """Space used under a path: its filesystem and the largest directories below it."""

    host: str
    path: str
    filesystem: FilesystemUsage | None = None
    largest: list[DiskEntry] = Field(default_factory=list)
