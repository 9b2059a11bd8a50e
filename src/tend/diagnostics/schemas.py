"""Request and response models of diagnostics."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tend.diagnostics.findings import Finding, ProbeStatus, Severity


class DiagnoseRequest(BaseModel):
    """Diagnose a host: every analyzer, or the ones named."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    analyzers: list[str] | None = Field(
        default=None, max_length=100, description="analyzer ids (default: all)"
    )
    run_async: bool = Field(
        default=False, alias="async", description="run as a background job: 202 with the job id"
    )


class ProbeRun(BaseModel):
    """One command the diagnosis ran (or was refused) on the host."""

    id: str
    argv: list[str]
    status: ProbeStatus
    exit_code: int | None = None
    duration: float = 0.0
    error: str | None = None


class DiagnosisReport(BaseModel):
    """What the analyzers found on one host, most severe first."""

    host: str
    status: Severity = Field(description="the most severe finding's severity")
    counts: dict[Severity, int] = Field(description="findings per severity")
    started_at: datetime
    duration: float = Field(description="seconds")
    run_id: str = Field(description="the audit log's run id of every command it ran")
    analyzers: list[str]
    findings: list[Finding]
    probes: list[ProbeRun]


class AnalyzerPublic(BaseModel):
    """One registered analyzer and the commands it runs by default."""

    id: str
    description: str
    commands: list[list[str]]
    baseline: bool = Field(description="compares with what it saw on the previous check")
