#!/usr/bin/env python3
"""Benchmark: the assistant's harness — overhead per tool-call step, and tokens sent to the model.

Everything runs in this process against a started tend (real app lifespan, fresh temp data dir,
SQLite), with a **zero-latency scripted model**: a pydantic-ai ``FunctionModel`` whose stream
function immediately returns the next scripted tool call. Two agents get the same model script
and the same bench tool (``collect(step)``, which returns a prepared output):

- **tend**: ``build_agent`` + ``run_investigation`` (the one streaming loop) with the deps a
  server turn builds (``OutputStore``, ``ContextBudget.from_settings``, ``Redactor``,
  ``UsageLimiter``): loop guard, daily limits, context capability (compaction, cutting to the
  window, redaction, fitting outputs behind handles), event mapping, the report judged at the end;
- **bare**: a plain pydantic-ai ``Agent`` (tend's instructions, the tool, ``str`` output) driven
  with ``agent.iter`` + ``node.stream`` the same way, outputs sent whole.

Part (a), overhead: ``--rounds`` rounds (after ``--warmup``) of an ``--overhead-steps``-step
investigation per system, with tiny outputs and with 4 kB log outputs (under the cut, so tend
fits/redacts/counts them but keeps them whole). One step = the time between two consecutive
model requests minus the tool's own time (measured inside the tool). Target: tend's median
< 5 ms per step.

Part (b), tokens: a ``--token-steps`` (30)-step investigation whose outputs total ``--total-mib``
(5 MiB) of realistic journal / ``ps aux`` / ``df`` text with 3 planted finding lines per output
at random positions. Every request the model receives (tool steps and compaction summaries) is
estimated with ``tend.assistant.tokens.estimate_request`` (instructions + tool definitions +
messages) and serialised (bytes). Target: tend sends >= 20x fewer tokens than the bare agent.
Then every planted line is looked for in what the model saw and, through the handles named in
the notes, by paging with the ``read_output`` tool's own code (``ContextCapability.read_output``)
until ``next_offset`` is null; target: all reachable.

Usage::

    .venv/bin/python bench/assistant.py [--parts a,b] [--rounds 10] [--overhead-steps 40]
        [--token-steps 30] [--total-mib 5] [--windows 32000,128000,200000] [--share 0.2]
        [--json-out PATH]

A missed target is reported, not an error; exit code 1 only when a run did not do what it was
scripted to do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import importlib.metadata
import io
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic_ai import Agent
from pydantic_ai.capabilities import Toolset
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.toolsets import FunctionToolset

from tend.app import create_app
from tend.assistant.agent import INSTRUCTIONS, build_agent, run_investigation
from tend.assistant.context import ContextCapability
from tend.assistant.deps import AssistantDeps
from tend.assistant.events import ToolResultEvent
from tend.assistant.limits import UsageLimiter
from tend.assistant.outcomes import RunLimits
from tend.assistant.outputs import OutputStore
from tend.assistant.redact import Redactor
from tend.assistant.tokens import ContextBudget, TokenCounter, estimate_request
from tend.auth.models import Role
from tend.auth.service import create_user
from tend.context import AppContext
from tend.execution.service import Caller
from tend.settings import Settings

DEFAULT_JSON_OUT = Path(__file__).resolve().parent / "results" / "assistant.json"
TOOL = "collect"
PROMPT = "Since this morning web-07 is slow and some orders fail. What is wrong?"
FINAL_TEXT = "web-07: see the findings above."
REPORT_ARGS = json.dumps({"summary": "web-07 ran out of memory and disk; see the evidence."})
NOTE = re.compile(r'read_output\(handle=\\?"([0-9a-f]+)\\?", offset=(\d+)\)')
STEP_TARGET_MS = 5.0
RATIO_TARGET = 20.0
FINDINGS_PER_OUTPUT = 3


class BenchError(Exception):
    """A run did not do what it was scripted to do (no trustworthy figure)."""


# --------------------------------------------------------------------------- the scripted model


@dataclass
class ScriptedModel:
    """Zero-latency model: N ``collect`` calls, then the final answer; records every request."""

    steps: int
    finish: Literal["report", "text"]
    account: bool = False
    times: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    summary_tokens: list[int] = field(default_factory=list)
    summary_sizes: list[int] = field(default_factory=list)
    returns: dict[str, Any] = field(default_factory=dict)
    counter: TokenCounter = field(default_factory=TokenCounter)
    issued: int = 0

    @property
    def model(self) -> FunctionModel:
        return FunctionModel(self._summarise, stream_function=self._stream, model_name="scripted")

    def _measure(self, messages: list[ModelMessage], info: AgentInfo) -> tuple[int, int]:
        tools = [*info.function_tools, *info.output_tools]
        tokens = estimate_request(
            messages, instructions=info.instructions, tools=tools, counter=self.counter
        )
        size = len(ModelMessagesTypeAdapter.dump_json(messages)) + len(info.instructions or "")
        size += sum(
            len(t.name) + len(t.description or "") + len(json.dumps(t.parameters_json_schema))
            for t in tools
        )
        return tokens, size

    async def _stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        self.times.append(time.perf_counter())
        if self.account:
            tokens, size = self._measure(messages, info)
            self.tokens.append(tokens)
            self.sizes.append(size)
            for message in messages:
                if isinstance(message, ModelRequest):
                    for part in message.parts:
                        if isinstance(part, ToolReturnPart) and part.tool_name == TOOL:
                            self.returns.setdefault(part.tool_call_id, part.content)
        if self.issued < self.steps:
            step, self.issued = self.issued, self.issued + 1
            args = json.dumps({"step": step})
            yield {0: DeltaToolCall(name=TOOL, json_args=args, tool_call_id=f"step-{step}")}
        elif self.finish == "report":
            yield {0: DeltaToolCall(name="submit_report", json_args=REPORT_ARGS, tool_call_id="r")}
        else:
            yield FINAL_TEXT

    async def _summarise(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        """Non-streamed requests come only from tend's compaction: answer with a summary."""
        tokens, size = self._measure(messages, info)
        self.summary_tokens.append(tokens)
        self.summary_sizes.append(size)
        transcript = "\n".join(
            str(getattr(part, "content", "")) for m in messages for part in m.parts
        )
        handles = sorted({m.group(1) for m in NOTE.finditer(transcript)})
        summary = (
            f"Summary #{len(self.summary_tokens)}. The user asked why web-07 is slow and why"
            " orders fail. Collected the journal, the process table and df output of web-07;"
            " the outputs were cut to head and tail and kept under handles. Seen so far: nginx"
            " 5xx bursts, orders-api timeouts against PostgreSQL, a full filesystem suspected,"
            " memory pressure suspected. Open: which process fills the disk, whether the OOM"
            " killer ran. Handles kept: " + ", ".join(handles)
        )
        return ModelResponse(parts=[TextPart(summary)])


class CollectTool:
    """The bench tool: returns prepared output number ``step``; times its own work."""

    def __init__(self, outputs: Sequence[Any]) -> None:
        self.outputs = outputs
        self.own_ns: list[int] = []

    async def collect(self, step: int) -> Any:
        """Collect diagnostic output number ``step`` of the host under investigation.

        Args:
            step: Which output (0 for the first).
        """
        began = time.perf_counter_ns()
        output = self.outputs[step % len(self.outputs)]
        self.own_ns.append(time.perf_counter_ns() - began)
        return output

    def toolset(self) -> FunctionToolset[Any]:
        toolset: FunctionToolset[Any] = FunctionToolset()
        toolset.add_function(self.collect, name=TOOL, takes_ctx=False)
        return toolset


# --------------------------------------------------------------------------- realistic outputs

PATHS = ["/api/v1/orders", "/api/v1/orders/7781", "/api/v1/cart", "/static/app.js", "/healthz"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0", "curl/8.5.0", "kube-probe/1.30"]
PROCS = [
    ("www-data", "php-fpm: pool www"),
    ("www-data", "nginx: worker process"),
    ("root", "[kworker/1:2-events]"),
    ("postgres", "postgres: 15/main: orders orders 10.0.2.14(51234) idle"),
    ("app", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xms2g -Xmx4g -jar /opt/orders/api.jar"),
    ("app", "python3 /opt/worker/worker.py --queue=emails --concurrency=4"),
    ("root", "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -address /run/containerd.sock"),
]


def _clock(second: int) -> str:
    hours, rest = divmod(second % 86400, 3600)
    return f"Nov 26 {hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def journal_line(rng: random.Random, second: int) -> str:
    ts, pick = _clock(second), rng.random()
    if pick < 0.55:
        ip = f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        status = rng.choice((200, 200, 200, 201, 304, 404, 502))
        return (
            f"{ts} web-07 nginx[{rng.randint(900, 990)}]: {ip} - - [26/Nov/2026:{ts[7:]} +0000]"
            f' "GET {rng.choice(PATHS)}?page={rng.randint(1, 40)} HTTP/1.1" {status}'
            f' {rng.randint(200, 90000)} "-" "{rng.choice(AGENTS)}" rt={rng.random():.3f}'
        )
    if pick < 0.75:
        return (
            f"{ts} web-07 orders-api[2231]: INFO request_id={rng.getrandbits(64):016x}"
            f" route=/api/v1/orders user={rng.randint(1, 99999)} took_ms={rng.randint(3, 4000)}"
            f" db_ms={rng.randint(1, 3000)}"
        )
    if pick < 0.85:
        return f"{ts} web-07 systemd[1]: Started session-{rng.randint(1000, 9999)}.scope."
    if pick < 0.92:
        return (
            f"{ts} web-07 CRON[{rng.randint(20000, 60000)}]: (root) CMD (command -v debian-sa1"
            " > /dev/null && debian-sa1 1 1)"
        )
    return (
        f"{ts} web-07 postgres[{rng.randint(1200, 1300)}]: LOG:  checkpoint complete: wrote"
        f" {rng.randint(10, 9000)} buffers ({rng.random() * 9:.1f}%);"
        f" write={rng.random() * 30:.3f} s"
    )


def ps_line(rng: random.Random, _second: int) -> str:
    user, command = rng.choice(PROCS)
    return (
        f"{user:<9} {rng.randint(300, 65000):>7} {rng.random() * 12:>4.1f} {rng.random() * 4:>4.1f}"
        f" {rng.randint(10_000, 9_000_000):>8} {rng.randint(1000, 900_000):>7} ?        "
        f"{rng.choice(('S', 'Ss', 'Sl', 'R', 'I<')):<4} 0{rng.randint(0, 9)}:{rng.randint(10, 59)}"
        f"   {rng.randint(0, 90)}:{rng.randint(10, 59)} {command}"
    )


def df_line(rng: random.Random, _second: int) -> str:
    layer = f"{rng.getrandbits(128):032x}{rng.getrandbits(128):032x}"
    used = rng.randint(5, 70)
    if rng.random() < 0.7:
        return (
            f"overlay          100G  {used}G  {100 - used}G  {used}%"
            f" /var/lib/docker/overlay2/{layer}/merged"
        )
    return f"shm               64M     0   64M   0% /var/lib/docker/containers/{layer}/mounts/shm"


def finding_line(kind: str, rng: random.Random, uid: int, ts: str) -> str:
    if kind == "journal":
        return rng.choice(
            (
                f"{ts} web-07 kernel: Out of memory: Killed process {uid} (java) total-vm:"
                f"{rng.randint(4, 9)}812340kB, anon-rss:3981220kB, file-rss:0kB, oom_score_adj:0",
                f"{ts} web-07 kernel: EXT4-fs error (device nvme0n1p2): ext4_find_entry:1463:"
                f" inode #{uid}: comm nginx: reading directory lblock 0",
                f'{ts} web-07 postgres[{uid}]: FATAL:  could not write to file "pg_wal/xlogtemp.'
                f'{uid}": No space left on device',
            )
        )
    if kind == "ps":
        return (
            f"root      {uid:>7} 99.{rng.randint(0, 9)} 38.{rng.randint(0, 9)} 9123400 6200112 ?"
            f"        R    03:12  412:{rng.randint(10, 59)} /usr/local/bin/backup-agent --full"
            f" --no-throttle --target=/var/backups/run-{uid}"
        )
    return f"/dev/sdb{uid % 9 + 1}        500G  499G  1.0G 100% /srv/pg-archive/{uid}"


KINDS: dict[str, tuple[str, list[str], Callable[[random.Random, int], str]]] = {
    "journal": ("", ["journalctl", "-n", "5000", "--no-pager"], journal_line),
    "ps": (
        "USER          PID %CPU %MEM      VSZ     RSS TTY      STAT START   TIME COMMAND",
        ["ps", "aux"],
        ps_line,
    ),
    "df": ("Filesystem       Size  Used Avail Use% Mounted on", ["df", "-h"], df_line),
}


@dataclass
class Outputs:
    """The investigation's tool outputs: what the tool returns, the raw texts, planted lines."""

    payloads: list[dict[str, Any]]
    texts: list[str]
    findings: list[list[str]]

    @property
    def total_bytes(self) -> int:
        return sum(len(t.encode()) for t in self.texts)


def make_outputs(steps: int, total_bytes: int, seed: int) -> Outputs:
    """``steps`` outputs of ``total_bytes`` in all, each with planted findings at random lines."""
    rng = random.Random(seed)
    size = total_bytes // steps
    payloads, texts, findings = [], [], []
    for step in range(steps):
        kind = ("journal", "journal", "journal", "ps", "df")[step % 5]
        header, argv, line_of = KINDS[kind]
        second = 8 * 3600 + step * 600
        lines = [header] if header else []
        used = len(header) + 1 if header else 0
        while used < size - FINDINGS_PER_OUTPUT * 160:
            lines.append(line_of(rng, second))
            used += len(lines[-1]) + 1
            second += rng.randint(0, 2)
        planted = []
        for i, pos in enumerate(sorted(rng.sample(range(1, len(lines)), FINDINGS_PER_OUTPUT))):
            ts = lines[pos + i][:15]
            planted.append(finding_line(kind, rng, 30_000 + step * 97 + i * 13, ts))
            lines.insert(pos + i, planted[-1])
        text = "\n".join(lines) + "\n"
        texts.append(text)
        findings.append(planted)
        payloads.append(
            {"status": "success", "host": "web-07", "argv": argv, "exit_code": 0, "stdout": text}
        )
    return Outputs(payloads, texts, findings)


# --------------------------------------------------------------------------- tend and bare runs


@dataclass
class Env:
    """A started tend: its context, settings, and the operator the assistant acts for."""

    context: AppContext
    settings: Settings
    caller: Caller
    runs: int = 0

    def deps(self, window: int, share: float | None = None) -> AssistantDeps:
        """The deps a server turn builds (see ``tend.assistant.turns``), for a model window."""
        self.runs += 1
        database = self.context.database
        budget = ContextBudget.from_settings(self.settings, window)
        if share is not None:  # what TEND_ASSISTANT_TOOL_OUTPUT_SHARE sets
            budget = dataclasses.replace(budget, tool_output_share=share)
        return AssistantDeps.from_context(
            self.context,
            self.caller,
            outputs=OutputStore.from_settings(database, self.settings),
            budget=budget,
            redactor=Redactor(),
            conversation_id=f"bench-{self.runs}",
            limiter=UsageLimiter.from_settings(database, self.settings),
        )


@contextlib.asynccontextmanager
async def started_tend() -> AsyncIterator[Env]:
    """Start tend (real lifespan, temp data dir, SQLite) and create an operator."""
    tmp = Path(tempfile.mkdtemp(prefix="tend-bench-assistant-"))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp / "data",
        log_level="WARNING",
        access_log=False,
        monitor=False,
        scheduler=False,
        password_hash_memory_kib=1024,
        password_hash_time_cost=1,
    )
    app = create_app(settings)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the first-start banner
            lifespan = app.router.lifespan_context(app)
            await lifespan.__aenter__()
        try:
            context: AppContext = app.state.context
            async with context.database.session() as session:
                user = await create_user(
                    session,
                    context.passwords,
                    username="bench-operator",
                    password="bench-password-1",
                    role=Role.OPERATOR,
                )
            caller = Caller(user_id=user.id, username=user.username, role=Role.OPERATOR)
            yield Env(context, settings, caller)
        finally:
            await lifespan.__aexit__(None, None, None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def run_tend(
    env: Env, script: ScriptedModel, tool: CollectTool, window: int, share: float | None = None
) -> tuple[float, AssistantDeps]:
    """One investigation through tend's loop; returns its wall time and deps."""
    agent = build_agent(script.model, env.settings, capabilities=[Toolset(tool.toolset())])
    deps = env.deps(window, share)
    # The run must be able to take every scripted step: no per-run token cap (see README).
    limits = RunLimits(steps=script.steps + 2, tool_calls=script.steps + 10, total_tokens=None)
    began = time.perf_counter()
    done, events = await run_investigation(agent, deps, PROMPT, limits=limits)
    wall = time.perf_counter() - began
    results = [e for e in events if isinstance(e, ToolResultEvent) and e.tool == TOOL]
    if done.status != "completed" or len(results) != script.steps:
        raise BenchError(f"tend run: {done.status}, {len(results)}/{script.steps} tool results")
    return wall, deps


async def run_bare(script: ScriptedModel, tool: CollectTool) -> float:
    """The same script through a bare pydantic-ai agent, streamed like tend's loop."""
    agent: Agent[None, str] = Agent(
        script.model, instructions=INSTRUCTIONS, toolsets=[tool.toolset()], output_type=str
    )
    began = time.perf_counter()
    async with agent.iter(PROMPT) as run:
        async for node in run:
            if Agent.is_model_request_node(node) or Agent.is_call_tools_node(node):
                async with node.stream(run.ctx) as stream:
                    async for _event in stream:
                        pass
    wall = time.perf_counter() - began
    if run.result is None or run.result.output != FINAL_TEXT or len(tool.own_ns) != script.steps:
        raise BenchError(f"bare run: {len(tool.own_ns)}/{script.steps} tool calls")
    return wall


# --------------------------------------------------------------------------- part (a)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def overhead(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    """Per-step harness overhead of tend vs the bare agent, tiny and 4 kB outputs."""
    rng = random.Random(args.seed)
    steps = args.overhead_steps
    variants: dict[str, list[str]] = {
        "tiny": [f"step {k}: ok, nothing unusual" for k in range(steps)],
        "4 kB": [],
    }
    for k in range(steps):
        lines, second = [], 3600 * 9 + k * 60
        while sum(len(line) + 1 for line in lines) < 4000:
            lines.append(journal_line(rng, second))
        variants["4 kB"].append("\n".join(lines) + "\n")
    steps_ms: dict[str, list[float]] = {}
    fixed_ms: dict[str, list[float]] = {}
    own_us: dict[str, list[float]] = {}
    for round_no in range(args.warmup + args.rounds):
        for variant, outputs in variants.items():
            order = ("tend", "bare") if round_no % 2 == 0 else ("bare", "tend")
            for system in order:
                script = ScriptedModel(steps, "report" if system == "tend" else "text")
                tool = CollectTool(outputs)
                gc.collect()
                if system == "tend":
                    wall, _ = await run_tend(env, script, tool, args.overhead_window)
                else:
                    wall = await run_bare(script, tool)
                if round_no < args.warmup:
                    continue
                key = f"{variant}|{system}"
                t = script.times
                per_step = [(t[k + 1] - t[k]) * 1000 - tool.own_ns[k] / 1e6 for k in range(steps)]
                steps_ms.setdefault(key, []).extend(per_step)
                fixed_ms.setdefault(key, []).append((wall - (t[-1] - t[0])) * 1000)
                own_us.setdefault(key, []).extend(ns / 1000 for ns in tool.own_ns)
    rows = []
    for key, values in steps_ms.items():
        variant, system = key.split("|")
        quarter = max(1, steps // 4)
        rows.append(
            {
                "output": variant,
                "system": system,
                "median_ms": statistics.median(values),
                "p95_ms": percentile(values, 0.95),
                "mean_ms": statistics.fmean(values),
                "samples": len(values),
                "tool_own_median_us": statistics.median(own_us[key]),
                "run_fixed_median_ms": statistics.median(fixed_ms[key]),
                "median_by_position_ms": [
                    statistics.median(
                        v for i, v in enumerate(values) if start <= i % steps < start + quarter
                    )
                    for start in range(0, steps, quarter)
                ],
            }
        )
    return {"steps": steps, "rounds": args.rounds, "window": args.overhead_window, "rows": rows}


# --------------------------------------------------------------------------- part (b)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings_in(v)]
    return []


async def reachability(
    deps: AssistantDeps, script: ScriptedModel, outputs: Outputs
) -> dict[str, Any]:
    """Look for each planted line in what the model saw and by paging the handles in the notes."""
    pager = ContextCapability(budget=deps.budget, store=deps.outputs, owner=deps.owner)
    total = in_context = via_handles = reachable = pages = exact = handles_seen = 0
    for step, planted in enumerate(outputs.findings):
        seen = "\n".join(strings_in(script.returns.get(f"step-{step}")))
        paged: list[str] = []
        for handle in dict.fromkeys(m.group(1) for m in NOTE.finditer(seen)):
            handles_seen += 1
            texts: list[str] = []
            offset: int | None = 0
            while offset is not None:
                page = await pager.read_output(handle, offset)
                if page["status"] != "success":
                    break
                pages += 1
                texts.append(page["text"])
                offset = page["next_offset"]
            paged.append("".join(texts))
        exact += any(p == outputs.texts[step] for p in paged)
        for line in planted:
            total += 1
            seen_here = line in seen
            paged_here = any(line in p for p in paged)
            in_context += seen_here
            via_handles += paged_here
            reachable += seen_here or paged_here
    return {
        "findings": total,
        "reachable": reachable,
        "in_context": in_context,
        "via_handles": via_handles,
        "handles": handles_seen,
        "outputs_paged_back_exactly": exact,
        "pages_read": pages,
    }


async def tokens(env: Env, args: argparse.Namespace) -> dict[str, Any]:
    """Tokens sent over one investigation: bare (whole outputs) vs tend at each window."""
    steps = args.token_steps
    outputs = make_outputs(steps, int(args.total_mib * 1024 * 1024), args.seed)
    rows = []
    bare = ScriptedModel(steps, "text", account=True)
    await run_bare(bare, CollectTool(outputs.payloads))
    planted = sum(len(f) for f in outputs.findings)
    seen = "\n".join(s for v in bare.returns.values() for s in strings_in(v))
    visible = sum(line in seen for f in outputs.findings for line in f)
    rows.append(_token_row("bare", None, bare, {
        "findings": planted, "reachable": visible, "in_context": visible, "via_handles": 0,
        "handles": 0, "outputs_paged_back_exactly": 0, "pages_read": 0,
    }))  # fmt: skip
    for window in args.windows:
        script = ScriptedModel(steps, "report", account=True)
        tool = CollectTool(outputs.payloads)
        _, deps = await run_tend(env, script, tool, window, args.share)
        row = _token_row("tend", window, script, await reachability(deps, script, outputs))
        row["tool_output_tokens"] = deps.budget.tool_output_tokens
        rows.append(row)
    for row in rows:
        row["ratio"] = rows[0]["tokens_sent"] / row["tokens_sent"]
        row["bytes_ratio"] = rows[0]["bytes_sent"] / row["bytes_sent"]
    return {
        "steps": steps,
        "tool_output_share": args.share,
        "output_bytes": outputs.total_bytes,
        "output_bytes_each": len(outputs.texts[0]),
        "findings": planted,
        "rows": rows,
    }


def _token_row(
    system: str, window: int | None, script: ScriptedModel, reach: dict[str, Any]
) -> dict[str, Any]:
    return {
        "system": system,
        "window": window,
        "requests": len(script.tokens),
        "summaries": len(script.summary_tokens),
        "tokens_sent": sum(script.tokens) + sum(script.summary_tokens),
        "summary_tokens": sum(script.summary_tokens),
        "largest_request_tokens": max(script.tokens + script.summary_tokens),
        "bytes_sent": sum(script.sizes) + sum(script.summary_sizes),
        **reach,
    }


# --------------------------------------------------------------------------- report


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, {model}, {platform.system()} {platform.release()}, load {load}"


def human(n: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


def print_report(result: dict[str, Any]) -> None:
    a, b = result["overhead"], result["tokens"]
    print("benchmark : tend assistant harness, zero-latency scripted model (FunctionModel)")
    print(
        f"versions  : tend {result['tend']}, pydantic-ai {result['pydantic_ai']},"
        f" python {result['python']}"
    )
    print(f"machine   : {result['machine']}")
    print(f"date      : {result['date']}; database: SQLite in a fresh temp dir")
    if a is not None:
        print_overhead(a)
    if b is not None:
        print_tokens(b)


def print_overhead(a: dict[str, Any]) -> None:
    print(
        f"\n(a) harness overhead per tool-call step, tool's own time subtracted:"
        f" {a['rounds']} rounds x {a['steps']} steps per system, window {a['window']:,}"
    )
    head = (
        "output | system | median   | p95      | mean     | tool own | run fixed"
        " | median by step quarter"
    )
    print(head)
    print("-" * len(head))
    for r in a["rows"]:
        quarters = " / ".join(f"{v:.2f}" for v in r["median_by_position_ms"])
        print(
            f"{r['output']:<6} | {r['system']:<6} | {r['median_ms']:5.2f} ms"
            f" | {r['p95_ms']:5.2f} ms | {r['mean_ms']:5.2f} ms | {r['tool_own_median_us']:5.1f} us"
            f" | {r['run_fixed_median_ms']:6.1f} ms | {quarters}"
        )
    by = {(r["output"], r["system"]): r for r in a["rows"]}
    for output in dict.fromkeys(r["output"] for r in a["rows"]):
        tend, bare = by[(output, "tend")], by[(output, "bare")]
        met = "met" if tend["median_ms"] < STEP_TARGET_MS else "NOT met"
        print(
            f"{output} outputs: tend {tend['median_ms']:.2f} ms vs bare {bare['median_ms']:.2f} ms"
            f" per step (+{tend['median_ms'] - bare['median_ms']:.2f} ms, "
            f"{tend['median_ms'] / bare['median_ms']:.1f}x);"
            f" target tend median < {STEP_TARGET_MS:g} ms: {met}"
        )


def print_tokens(b: dict[str, Any]) -> None:
    print(
        f"\n(b) tokens sent over a {b['steps']}-step investigation,"
        f" {b['output_bytes']:,} B of tool output"
        f" ({b['output_bytes_each']:,} B per step), {b['findings']} planted finding lines,"
        f" tool output share {b['tool_output_share'] or 'default'}"
    )
    head = (
        "system | window  | requests | summaries | tokens sent | ratio  | largest req"
        " | bytes sent | ratio  | findings reachable | in context | via handles | pages"
    )
    print(head)
    print("-" * len(head))
    for r in b["rows"]:
        window = f"{r['window']:,}" if r["window"] else "-"
        print(
            f"{'bare' if r['window'] is None else 'tend':<6} | {window:>7} | {r['requests']:>8} |"
            f" {r['summaries']:>9} | {human(r['tokens_sent']):>11} | {r['ratio']:5.1f}x |"
            f" {human(r['largest_request_tokens']):>11} | {r['bytes_sent'] / 1e6:7.2f} MB |"
            f" {r['bytes_ratio']:5.1f}x | {r['reachable']:>8}/{r['findings']:<9} |"
            f" {r['in_context']:>10} | {r['via_handles']:>11} | {r['pages_read']:>5}"
        )
    for r in b["rows"][1:]:
        ratio_met = "met" if r["ratio"] >= RATIO_TARGET else "NOT met"
        reach_met = "met" if r["reachable"] == r["findings"] else "NOT met"
        print(
            f"window {r['window']:,} (one output <= {r['tool_output_tokens']:,} tokens):"
            f" {r['ratio']:.1f}x fewer tokens (target >= {RATIO_TARGET:g}x: {ratio_met});"
            f" findings reachable {r['reachable']}/{r['findings']} ({reach_met});"
            f" {r['outputs_paged_back_exactly']}/{b['steps']} outputs paged back byte-exact"
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with started_tend() as env:
        part_a = await overhead(env, args) if "a" in args.parts else None
        part_b = await tokens(env, args) if "b" in args.parts else None
    return {
        "tend": importlib.metadata.version("tend"),
        "pydantic_ai": importlib.metadata.version("pydantic-ai-slim"),
        "python": platform.python_version(),
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "overhead": part_a,
        "tokens": part_b,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument(
        "--parts", type=lambda s: set(s.split(",")), default={"a", "b"}, help="a,b or one"
    )
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds of part (a)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    parser.add_argument("--overhead-steps", type=int, default=40, help="tool steps per run (a)")
    parser.add_argument("--overhead-window", type=int, default=128_000, help="context window (a)")
    parser.add_argument("--token-steps", type=int, default=30, help="tool steps of part (b)")
    parser.add_argument("--total-mib", type=float, default=5.0, help="tool output in all (b)")
    parser.add_argument(
        "--windows",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[32_000, 128_000, 200_000],
        help="context windows tend is run with in part (b)",
    )
    parser.add_argument(
        "--share",
        type=float,
        default=None,
        help="tool output share of the window in part (b) (default: the setting, 0.2)",
    )
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON_OUT)
    args = parser.parse_args(argv)
    if not (
        1 <= args.rounds <= 100 and 4 <= args.overhead_steps <= 200 and 1 <= args.token_steps <= 200
    ):
        parser.error("--rounds must be 1-100, --overhead-steps 4-200, --token-steps 1-200")
    if any(w < 4096 for w in args.windows) or args.overhead_window < 4096:
        parser.error("context windows must be at least 4096 tokens")
    if not args.parts or args.parts - {"a", "b"}:
        parser.error("--parts is a, b or a,b")
    if args.share is not None and not 0 < args.share <= 0.5:
        parser.error("--share must be in (0, 0.5]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        result = asyncio.run(run(args))
    except BenchError as exc:
        print(f"assistant: FAILED: {exc}", file=sys.stderr)
        return 1
    result["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print_report(result)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nJSON: {args.json_out}  (took {result['elapsed_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
