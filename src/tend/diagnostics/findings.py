"""What analyzers work with: probes (read-only argv), their outputs, and the findings they return.

A probe is one read-only argv an analyzer needs run on the host; the runner gathers every probe
of the selected analyzers once and hands the outputs to each analyzer. Analyzers are pure
functions of those outputs, so they are tested on recorded output of real systems.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from tend.diagnostics.config import DiagnosticsConfig
from tend.execution.policy import Risk

MAX_EVIDENCE_LINES = 40
MAX_EVIDENCE_CHARS = 400


class Severity(StrEnum):
    """How bad a finding is, ordered ``ok < info < warning < critical``."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order ``ok`` (0) < ``info`` < ``warning`` < ``critical`` (3)."""
        return _RANK[self]


_RANK = {Severity.OK: 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


def worst(severities: Sequence[Severity]) -> Severity:
    """Return the most severe of ``severities`` (``ok`` for none)."""
    return max(severities, key=lambda s: s.rank, default=Severity.OK)


class NextStep(BaseModel):
    """A command proposed to investigate or fix a finding; judged by the policy, never run."""

    argv: list[str]
    purpose: str
    risk: Risk | None = Field(default=None, description="the policy's verdict for this host")
    reason: str | None = Field(default=None, description="why the policy judged it so")


class Finding(BaseModel):
    """One thing an analyzer observed, with the evidence that shows it."""

    analyzer: str
    severity: Severity
    title: str
    evidence: list[str] = Field(default_factory=list, description="the lines and values seen")
    likely_cause: str | None = None
    next_steps: list[NextStep] = Field(default_factory=list)


def clip(lines: Sequence[str], limit: int = MAX_EVIDENCE_LINES) -> list[str]:
    """Bound evidence: at most ``limit`` lines of at most ``MAX_EVIDENCE_CHARS`` characters."""
    kept = [
        line if len(line) <= MAX_EVIDENCE_CHARS else line[:MAX_EVIDENCE_CHARS] + "…"
        for line in lines[:limit]
    ]
    if len(lines) > limit:
        kept.append(f"… {len(lines) - limit} more line(s)")
    return kept


def finding(
    analyzer: str,
    severity: Severity,
    title: str,
    evidence: Sequence[str] = (),
    *,
    cause: str | None = None,
    steps: Sequence[tuple[Sequence[str], str]] = (),
) -> Finding:
    """Build a finding; ``steps`` are ``(argv, purpose)`` pairs, evidence is clipped."""
    return Finding(
        analyzer=analyzer,
        severity=severity,
        title=title,
        evidence=clip(list(evidence)),
        likely_cause=cause,
        next_steps=[NextStep(argv=list(argv), purpose=purpose) for argv, purpose in steps],
    )


ProbeStatus = Literal["ok", "failed", "timeout", "error", "refused", "missing"]


@dataclass(frozen=True, slots=True)
class Probe:
    """One read-only argv to run on the host; probes with the same ``id`` run once."""

    id: str
    argv: tuple[str, ...]
    timeout: float = 20.0


@dataclass(frozen=True, slots=True)
class ProbeOutput:
    """What a probe returned: ``missing`` means the command does not exist on the host."""

    probe: Probe
    status: ProbeStatus
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    truncated: bool = False
    error: str | None = None
    error_kind: str | None = None
    duration: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def usable(self) -> bool:
        """Whether there is output worth parsing (a non-zero exit may still carry data)."""
        return self.status in ("ok", "failed", "timeout") and bool(self.stdout.strip())

    def why_not(self) -> str:
        """Explain in a few words why this probe gave no usable output."""
        argv = " ".join(self.probe.argv)
        if self.status == "missing":
            return f"`{argv}`: command not available on the host"
        if self.status == "refused":
            return f"`{argv}` was not run: {self.error}"
        if self.status == "error":
            return f"`{argv}` could not run: {self.error}"
        if self.status == "timeout":
            return f"`{argv}` timed out after {self.probe.timeout:.0f} s"
        if self.status == "ok":
            return f"`{argv}`: no output"
        detail = (self.stderr.strip().splitlines() or [""])[-1]
        code = f"exit {self.exit_code}" if self.exit_code is not None else "no output"
        return f"`{argv}`: {code}" + (f": {detail}" if detail else "")


Readable = Callable[[Sequence[str]], bool]


@dataclass(slots=True)
class Observations:
    """Everything an analyzer sees: probe outputs by id, when, and its previous baseline."""

    host: str
    outputs: Mapping[str, ProbeOutput]
    now: datetime
    config: DiagnosticsConfig
    local: bool = False
    readable: Readable = field(default=lambda argv: True)
    baseline: Any = None
    new_baseline: Any = None

    def get(self, probe_id: str) -> ProbeOutput | None:
        """Return a probe's output, or ``None`` when it was not gathered."""
        return self.outputs.get(probe_id)

    def text(self, probe_id: str) -> str | None:
        """Return a probe's stdout when it is usable, else ``None``."""
        output = self.outputs.get(probe_id)
        return output.stdout if output is not None and output.usable else None


ProbesOf = Callable[[DiagnosticsConfig], Sequence[Probe]]
FollowUpOf = Callable[[Observations], Sequence[Probe]]
Analyze = Callable[[Observations], list[Finding]]


def _no_follow_up(_: Observations) -> Sequence[Probe]:
    return ()


@dataclass(frozen=True, slots=True)
class AnalyzerSpec:
    """One analyzer, described once: id, one-line description, what it gathers, how it judges.

    ``probes`` lists what to run in the first round; ``follow_up`` may ask for more once the
    first round's outputs are known (e.g. ``du`` on a full mount); ``analyze`` turns outputs
    into findings and must not raise on odd input. ``baseline`` analyzers get what they
    remembered on the previous check in ``Observations.baseline`` and set ``new_baseline``.
    """

    id: str
    description: str
    probes: ProbesOf
    analyze: Analyze
    follow_up: FollowUpOf = _no_follow_up
    baseline: bool = False
