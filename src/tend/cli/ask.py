"""``tend ask``: ask the assistant; its answer streams to the terminal.

The answer (text, then the report) goes to standard output; tool calls, usage and approvals go
to standard error. A command the assistant wants to run that changes something waits for a
human: on a terminal you are asked to approve or deny it at once (the same approvals API as
``tend approvals``; four-eyes hosts need someone else), then the investigation goes on; without
a terminal the approvals stay pending and their ids are printed.

Exit status: 0 answered, 1 failed, 3 waiting for approvals.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from tend.cli.client import ApiClient
from tend.cli.errors import CliError
from tend.cli.output import err, out
from tend.cli.run import results_table
from tend.settings import Settings

EXIT_FAILED = 1
EXIT_WAITING = 3
_ARG_CHARS = 120


@dataclass
class Turn:
    """What one streamed turn showed: the last event number, pending approvals, the end."""

    last_seq: int = 0
    text: list[str] = field(default_factory=list)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: dict[str, Any] | None = None


def read_events(lines: Iterator[str]) -> Iterator[tuple[int | None, str, dict[str, Any]]]:
    """Parse server-sent events: ``(id, event name, data)``.

    Args:
        lines: The response's lines.

    Yields:
        Each event.
    """
    seq: int | None = None
    name = ""
    data: list[str] = []
    for line in lines:
        if not line:
            if name and data:
                yield seq, name, json.loads("\n".join(data))
            seq, name, data = None, "", []
        elif line.startswith("id: "):
            seq = int(line[4:])
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
    if name and data:
        yield seq, name, json.loads("\n".join(data))


def _short(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= _ARG_CHARS else text[: _ARG_CHARS - 1] + "…"


def _show(name: str, data: dict[str, Any], turn: Turn) -> None:
    if name == "text":
        turn.text.append(data["delta"])
        sys.stdout.write(data["delta"])
        sys.stdout.flush()
    elif name == "tool_call":
        err.print(f"→ {data['tool']}({_short(data.get('args', {}))})", markup=False, style="dim")
    elif name == "tool_result":
        result = data.get("result")
        message = result.get("message") if isinstance(result, dict) else None
        tail = f": {message}" if message else ""
        err.print(f"← {data['tool']}: {data['status']}{tail}", markup=False, style="dim")
    elif name == "approval_required":
        turn.approvals[data["approval_id"]] = data
    elif name == "error":
        err.print(f"error: {data['message']}", markup=False, style="bold red")
    elif name == "done":
        turn.done = data


def stream_turn(api: ApiClient, path: str, **kwargs: Any) -> Turn:
    """Send a request whose answer is a turn's event stream and show it as it arrives."""
    turn = Turn()
    with api.stream("POST", path, **kwargs) as response:
        for seq, name, data in read_events(response.iter_lines()):
            if seq is not None:
                turn.last_seq = max(turn.last_seq, seq)
            _show(name, data, turn)
            if name == "done":
                break
    if turn.text and not "".join(turn.text).endswith("\n"):
        sys.stdout.write("\n")
    return turn


def show_report(turn: Turn) -> None:
    """Print the report's findings and proposed actions (and its summary unless streamed).

    What the model wrote is printed as plain text (``markup=False``): brackets in it are not
    styles.
    """
    report = (turn.done or {}).get("report")
    if not report:
        return
    if not "".join(turn.text).strip():
        out.print(report["summary"], markup=False, highlight=False)
    for finding in report.get("findings", []):
        out.print(f"\n{finding['severity'].upper()} {finding['title']}", markup=False)
        for line in finding.get("evidence", []):
            out.print(f"  {line}", markup=False, highlight=False)
    actions = report.get("proposed_actions", [])
    if actions:
        out.print("\nproposed actions (nothing ran; request one with tend run):", markup=False)
    for action in actions:
        command = " ".join(action["argv"])
        out.print(
            f"  [{action['risk']}] {action['host']}: {command} — {action['why']}",
            markup=False,
            highlight=False,
        )


def _usage_line(turn: Turn) -> None:
    usage = (turn.done or {}).get("usage")
    if usage:
        cost = f", ${usage['cost']:.4f}" if usage.get("cost") is not None else ""
        err.print(
            f"[dim]{usage['requests']} request(s), {usage['input_tokens']} tokens in, "
            f"{usage['output_tokens']} out{cost}[/]",
            highlight=False,
        )


def decide_inline(api: ApiClient, approvals: dict[str, dict[str, Any]]) -> int:
    """Ask, for each pending approval, whether to approve it; return how many were decided."""
    decided = 0
    for approval_id, item in approvals.items():
        command = " ".join(item["argv"])
        err.print(
            f"\napproval needed {approval_id}: {command} on "
            f"{', '.join(item['hosts'])} ({item['risk']}: {item['reason']})",
            markup=False,
            style="bold yellow",
        )
        if item.get("four_eyes"):
            err.print("[dim]four-eyes: someone other than the requester must approve[/]")
        answer = typer.prompt("approve? [y]es / [n]o (deny) / [s]kip", default="s", err=True)
        action = {"y": "approve", "yes": "approve", "n": "deny", "no": "deny"}.get(
            answer.strip().lower()
        )
        if action is None:
            continue
        try:
            outcome = api.request("POST", f"/api/v1/approvals/{approval_id}/{action}")
        except CliError as exc:  # four-eyes, expired meanwhile, role too low
            err.print(f"not {action}d: {exc.message}", markup=False, style="bold red")
            continue
        decided += 1
        run = outcome.get("run")
        if run is not None:
            err.print(results_table(run["results"]))
        else:
            err.print(f"{action}d {approval_id}")
    return decided


def _leave_pending(approvals: dict[str, dict[str, Any]], conversation_id: str) -> None:
    for approval_id, item in approvals.items():
        err.print(
            f"waiting for approval {approval_id}: {' '.join(item['argv'])} on "
            f"{', '.join(item['hosts'])}",
            markup=False,
        )
        out.print(approval_id, highlight=False)
    err.print(
        "approve with `tend approvals approve ID`; the investigation then goes on by itself "
        f"(continue with `tend ask --conversation {conversation_id} ...`)",
        markup=False,
    )


def ask(
    question: Annotated[str, typer.Argument(help="what you want to know")],
    hosts: Annotated[
        list[str] | None, typer.Option("-H", "--host", help="a host it is about (repeatable)")
    ] = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", "-c", help="continue this conversation")
    ] = None,
) -> None:
    """Ask the assistant; the answer streams here, approvals are asked for inline."""
    with ApiClient.from_settings(Settings()) as api:
        if conversation is None:
            created = api.request("POST", "/api/v1/conversations", json={"hosts": hosts or []})
            conversation = str(created["id"])
        elif hosts:
            raise CliError("-H applies to a new conversation; leave it out with --conversation")
        base = f"/api/v1/conversations/{conversation}"
        turn = stream_turn(api, f"{base}/messages", json={"content": question})
        show_report(turn)
        while (turn.done or {}).get("status") == "waiting":
            pending = {
                i: turn.approvals.get(i, {"argv": ["?"], "hosts": [], "risk": "?", "reason": ""})
                for i in turn.done["pending_approvals"]  # type: ignore[index]
            }
            if not sys.stdin.isatty():
                _leave_pending(pending, conversation)
                break
            if not decide_inline(api, pending):
                _leave_pending(pending, conversation)
                break
            turn = stream_turn(api, f"{base}/resume", params={"after": turn.last_seq})
            show_report(turn)
        _usage_line(turn)
        err.print(f"[dim]conversation {conversation}[/]", highlight=False)
    status = (turn.done or {}).get("status")
    if status == "waiting":
        raise typer.Exit(EXIT_WAITING)
    if status != "completed":
        raise typer.Exit(EXIT_FAILED)
