"""``tend eval CASES_DIR``: how well a model investigates real faults set up on this machine.

Runs locally, without a server: each case's fault is set up here, the assistant investigates it
against a throwaway tend, and the answer is scored. The model comes from ``TEND_LLM_MODEL`` (with
``TEND_LLM_BASE_URL`` / ``TEND_LLM_API_KEY``) or ``--model`` (repeat it to compare models).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tend.cli.errors import CliError
from tend.cli.output import out, print_json
from tend.settings import Settings

if TYPE_CHECKING:
    from tend.assistant.evals import ModelSummary

_STYLE = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow"}


def _cost(value: float | None) -> str:
    return f"${value:.4f}" if value is not None else "-"


def _render(summary: ModelSummary) -> None:
    table = Table(title=f"model {summary.model}", header_style="bold")
    for column in ("case", "result", "latency", "tokens in/out", "cost", "why"):
        table.add_column(column)
    for result in summary.results:
        table.add_row(
            result.case,
            f"[{_STYLE[result.status]}]{result.status}[/]",
            f"{result.latency:.1f}s",
            f"{result.input_tokens}/{result.output_tokens}",
            _cost(result.cost),
            "; ".join(result.failures) or "",
        )
    out.print(table)
    out.print(
        f"{summary.model}: {summary.passed}/{summary.cases - summary.skipped} passed "
        f"({summary.pass_rate:.0%}), {summary.skipped} skipped; tokens "
        f"{summary.input_tokens} in, {summary.output_tokens} out; cost {_cost(summary.cost)}; "
        f"latency median {summary.latency_median:.1f}s, max {summary.latency_max:.1f}s",
        highlight=False,
    )


def eval_command(
    cases_dir: Annotated[Path, typer.Argument(help="directory of *.yaml cases")],
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="provider:model (repeatable; default TEND_LLM_MODEL)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="where faults are set up (default: a temporary dir)"),
    ] = None,
    min_pass_rate: Annotated[
        float, typer.Option(help="exit 1 when a model passes fewer than this share of cases")
    ] = 0.0,
) -> None:
    """Run eval cases: set up each fault, let the assistant investigate it, score the answer."""
    # Imported here: the model clients take seconds to import, other commands need not wait.
    from tend.assistant.evals import EvalCaseError, load_cases, run_evals  # noqa: PLC0415
    from tend.assistant.llm import AssistantNotConfigured, model_specs  # noqa: PLC0415

    settings = Settings()
    try:
        cases = load_cases(cases_dir)
    except EvalCaseError as exc:
        raise CliError(str(exc), exit_code=2) from exc
    names = models or ([settings.llm_model] if settings.llm_model else [])
    try:
        if not names:
            model_specs(settings)  # raises with how to configure a model
        for name in names:
            model_specs(Settings(_env_file=None, **{**settings.model_dump(), "llm_model": name}))
    except AssistantNotConfigured as exc:
        raise CliError(str(exc.detail), exit_code=2) from exc
    with tempfile.TemporaryDirectory(prefix="tend-eval-") as scratch:
        where = workdir or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        summaries = asyncio.run(run_evals(cases, names, settings, where))
    if as_json:
        print_json([s.model_dump(mode="json") for s in summaries])
    else:
        for summary in summaries:
            _render(summary)
    sys.stdout.flush()
    if any(s.pass_rate < min_pass_rate for s in summaries):
        raise typer.Exit(1)
