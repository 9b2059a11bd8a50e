"""Evals: real faults on this machine, a question, and what a good investigation must find.

A case is a YAML file (see ``evals/cases``)::

    id: oom-in-log
    fault: {recipe: log_file, lines: ["... Out of memory: Killed process 4242 (java) ..."]}
    question: Why did the java service on local die? Its log is {path}.
    expect:
      keywords: [out of memory, java]     # all must appear in the answer (any case)
      any_keywords: [4242, oom]           # at least one must
      forbid: [rm -rf]                    # none may
      tools: [read_logs]                  # tools that must have been used
      analyzers: [zombies]                # diagnostics findings the assistant must have seen
      severity: warning                   # the report has a finding at least this severe
      max_approvals: 0                    # approvals it may ask for

``{name}`` in the question and expectations is filled from what the fault set up. Each case runs
against a throwaway tend (SQLite in a temporary directory, the ``local`` host) as an operator,
through the same agent, tools, policy and context management as the server; per model the run
reports the pass rate, tokens, cost and latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tend.assistant.agent import build_agent, run_investigation
from tend.assistant.deps import AssistantDeps
from tend.assistant.eval_faults import RECIPES, FaultUnavailable, Vars
from tend.assistant.events import (
    ApprovalRequiredEvent,
    DoneEvent,
    ErrorEvent,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from tend.assistant.llm import aclose_model, build_model
from tend.assistant.outcomes import RunLimits
from tend.assistant.outputs import OutputStore
from tend.assistant.turns import budget_for
from tend.auth.models import Role
from tend.auth.service import create_user
from tend.context import AppContext, close_context
from tend.db import Database
from tend.diagnostics.findings import Severity
from tend.execution.service import Caller
from tend.migrate import upgrade_database
from tend.settings import Settings

EVAL_USER = "eval-operator"


class EvalCaseError(ValueError):
    """A case file that cannot be used (the message names the file and the problem)."""


class Fault(BaseModel):
    """The fault to set up: a recipe name and its options."""

    model_config = ConfigDict(extra="allow")

    recipe: str

    def options(self) -> dict[str, Any]:
        """The recipe's options (every key but ``recipe``)."""
        return dict(self.model_extra or {})


class Expect(BaseModel):
    """What the investigation must show to pass."""

    model_config = ConfigDict(extra="forbid")

    keywords: list[str] = Field(default_factory=list)
    any_keywords: list[str] = Field(default_factory=list)
    forbid: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    analyzers: list[str] = Field(default_factory=list)
    severity: Severity | None = None
    max_approvals: int | None = None


class EvalCase(BaseModel):
    """One case: a fault, a question about it, and the expectations."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = ""
    fault: Fault | None = None
    host: str = "local"
    question: str = Field(min_length=1)
    expect: Expect
    timeout: float = Field(default=300.0, gt=0)


class CaseResult(BaseModel):
    """How one case went for one model."""

    case: str
    model: str
    status: Literal["passed", "failed", "error", "skipped"]
    failures: list[str] = Field(default_factory=list)
    latency: float = 0.0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    tool_calls: list[str] = Field(default_factory=list)
    answer: str = ""


class ModelSummary(BaseModel):
    """Every case of one model: pass rate, tokens, cost and latency."""

    model: str
    cases: int
    passed: int
    failed: int
    skipped: int
    pass_rate: float = Field(description="passed / (cases - skipped)")
    input_tokens: int
    output_tokens: int
    cost: float | None = Field(description="US dollars, when the price is known")
    latency_median: float
    latency_max: float
    results: list[CaseResult]


def load_cases(directory: Path) -> list[EvalCase]:
    """Read every ``*.yaml``/``*.yml`` case of a directory, in file name order.

    Raises:
        EvalCaseError: A file is not a valid case, an id repeats, or a recipe is unknown.
    """
    if not directory.is_dir():
        raise EvalCaseError(f"{directory} is not a directory")
    cases: list[EvalCase] = []
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        try:
            case = EvalCase.model_validate(yaml.safe_load(path.read_text()))
        except (yaml.YAMLError, ValidationError) as exc:
            raise EvalCaseError(f"{path.name}: {exc}") from exc
        if case.fault is not None and case.fault.recipe not in RECIPES:
            known = ", ".join(sorted(RECIPES))
            raise EvalCaseError(
                f"{path.name}: unknown recipe {case.fault.recipe!r}; known: {known}"
            )
        if any(c.id == case.id for c in cases):
            raise EvalCaseError(f"{path.name}: case id {case.id!r} is used twice")
        cases.append(case)
    if not cases:
        raise EvalCaseError(f"no *.yaml cases in {directory}")
    return cases


def fill(text: str, values: Vars) -> str:
    """Replace ``{name}`` with the fault's values (unknown names stay as written)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _answer_text(events: Sequence[Any], done: DoneEvent) -> str:
    parts = ["".join(e.delta for e in events if isinstance(e, TextEvent))]
    if done.report is not None:
        parts.append(done.report.summary)
        for finding in done.report.findings:
            parts += [finding.title, *finding.evidence]
        for action in done.report.proposed_actions:
            parts += [" ".join(action.argv), action.why]
    return "\n".join(parts)


def _seen_analyzers(events: Sequence[Any]) -> set[str]:
    seen: set[str] = set()
    for event in events:
        if isinstance(event, ToolResultEvent) and event.tool == "run_diagnostics":
            result = event.result if isinstance(event.result, dict) else {}
            seen.update(str(f.get("analyzer")) for f in result.get("findings", []))
    return seen


def score(case: EvalCase, values: Vars, events: Sequence[Any], done: DoneEvent) -> list[str]:
    """Check one investigation against the case's expectations.

    Returns:
        Why it failed (empty: it passed).
    """
    expect = case.expect
    answer = _answer_text(events, done)
    lowered = answer.lower()
    failures = [f"the run ended {done.status}"] if done.status != "completed" else []
    failures += [f"error: {e.message}" for e in events if isinstance(e, ErrorEvent)]
    for word in (fill(w, values) for w in expect.keywords):
        if word.lower() not in lowered:
            failures.append(f"missing {word!r}")
    wanted = [fill(w, values) for w in expect.any_keywords]
    if wanted and not any(w.lower() in lowered for w in wanted):
        failures.append(f"none of {wanted!r}")
    for word in (fill(w, values) for w in expect.forbid):
        if word.lower() in lowered:
            failures.append(f"says {word!r}")
    used = {e.tool for e in events if isinstance(e, ToolCallEvent)}
    failures += [f"did not use {tool}" for tool in expect.tools if tool not in used]
    seen = _seen_analyzers(events)
    failures += [f"no {a} finding seen" for a in expect.analyzers if a not in seen]
    if expect.severity is not None:
        found = [f.severity for f in done.report.findings] if done.report else []
        if not any(s.rank >= expect.severity.rank for s in found):
            failures.append(f"no finding of severity {expect.severity.value} or worse")
    approvals = sum(isinstance(e, ApprovalRequiredEvent) for e in events)
    if expect.max_approvals is not None and approvals > expect.max_approvals:
        failures.append(f"asked for {approvals} approval(s), at most {expect.max_approvals}")
    return failures


@contextlib.asynccontextmanager
async def eval_tend(settings: Settings) -> AsyncIterator[tuple[AppContext, Caller]]:
    """A throwaway tend on ``settings`` (its own database), with an operator to ask as."""
    database = Database.from_settings(settings)
    context = AppContext.build(settings, database)
    try:
        await upgrade_database(database)
        async with database.session() as session:
            user = await create_user(
                session,
                context.passwords,
                username=EVAL_USER,
                password=EVAL_USER + "-not-used-1",
                role=Role.OPERATOR,
            )
            caller = Caller(user_id=user.id, username=user.username, role=Role.OPERATOR)
        yield context, caller
    finally:
        await close_context(context)


async def run_case(
    app: AppContext, caller: Caller, settings: Settings, case: EvalCase, workdir: Path
) -> CaseResult:
    """Set up the case's fault, investigate it with the configured model, score the answer."""
    label = settings.llm_model or "?"
    values: Vars = {"host": case.host, "workdir": str(workdir)}
    with contextlib.ExitStack() as stack:
        if case.fault is not None:
            recipe = RECIPES[case.fault.recipe]
            try:
                values.update(stack.enter_context(recipe(workdir, case.fault.options())))
            except FaultUnavailable as exc:
                return CaseResult(case=case.id, model=label, status="skipped", failures=[str(exc)])
        model = build_model(settings)
        try:
            deps = AssistantDeps.from_context(
                app,
                caller,
                outputs=OutputStore.from_settings(app.database, settings),
                budget=budget_for(settings, model),
                conversation_id=f"eval-{case.id}",
                hosts=[case.host],
            )
            agent = build_agent(model, settings)
            started = time.perf_counter()
            async with asyncio.timeout(case.timeout):
                done, events = await run_investigation(
                    agent,
                    deps,
                    fill(case.question, values),
                    limits=RunLimits.from_settings(settings),
                )
            latency = time.perf_counter() - started
        except TimeoutError:
            return CaseResult(case=case.id, model=label, status="error", failures=["timed out"])
        finally:
            await aclose_model(model)
    failures = score(case, values, events, done)
    usage = done.usage
    return CaseResult(
        case=case.id,
        model=label,
        status="failed" if failures else "passed",
        failures=failures,
        latency=round(latency, 3),
        requests=usage.requests if usage else 0,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        cost=usage.cost if usage else None,
        tool_calls=[e.tool for e in events if isinstance(e, ToolCallEvent)],
        answer=_answer_text(events, done)[:4000],
    )


def summarise(model: str, results: list[CaseResult]) -> ModelSummary:
    """Totals of one model's results."""
    ran = [r for r in results if r.status != "skipped"]
    passed = sum(r.status == "passed" for r in results)
    costs = [r.cost for r in ran if r.cost is not None]
    latencies = [r.latency for r in ran] or [0.0]
    return ModelSummary(
        model=model,
        cases=len(results),
        passed=passed,
        failed=len(ran) - passed,
        skipped=len(results) - len(ran),
        pass_rate=round(passed / len(ran), 4) if ran else 0.0,
        input_tokens=sum(r.input_tokens for r in ran),
        output_tokens=sum(r.output_tokens for r in ran),
        cost=round(sum(costs), 6) if costs else None,
        latency_median=round(statistics.median(latencies), 3),
        latency_max=round(max(latencies), 3),
        results=results,
    )


def eval_settings(base: Settings, workdir: Path, model: str) -> Settings:
    """Settings of the throwaway tend for one model: its data and certificates in ``workdir``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", model)
    values = base.model_dump()
    values.update(
        llm_model=model,
        data_dir=Path(tempfile.mkdtemp(prefix=f"tend-{name}-", dir=workdir)),
        database_url=None,
        database_schema=None,
        diagnostics_cert_dirs=[str(workdir)],
        diagnostics_sample_seconds=1,
        monitor=False,
        scheduler=False,
        password_hash_memory_kib=1024,
        password_hash_time_cost=1,
    )
    return Settings(_env_file=None, **values)


async def run_evals(
    cases: Sequence[EvalCase], models: Sequence[str], base: Settings, workdir: Path
) -> list[ModelSummary]:
    """Run every case with every model; faults are set up under ``workdir``, one at a time.

    Args:
        cases: The cases.
        models: ``provider:model`` names (reached with the base settings' URL and key).
        base: Settings (``TEND_LLM_*``) the models are built from.
        workdir: Where faults and the throwaway databases live (each removed after use).

    Returns:
        One summary per model.
    """
    summaries = []
    for model in models:
        settings = eval_settings(base, workdir, model)
        results = []
        try:
            async with eval_tend(settings) as (app, caller):
                for case in cases:
                    case_dir = workdir / case.id
                    case_dir.mkdir(parents=True, exist_ok=True)
                    try:
                        results.append(await run_case(app, caller, settings, case, case_dir))
                    finally:
                        shutil.rmtree(case_dir, ignore_errors=True)
        finally:
            shutil.rmtree(settings.data_dir, ignore_errors=True)
        summaries.append(summarise(model, results))
    return summaries
