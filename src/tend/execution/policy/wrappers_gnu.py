"""Wrappers with GNU option parsing that decides where their command starts.

``nice``, ``time``, ``ionice``, ``chrt``/``taskset`` and ``xargs`` are judged by the command
they run, found exactly as the real program finds it (signed and abbreviated options, optional
values), so ``nice -n+5 rm -rf /`` or ``xargs -eI rm -rf /`` cannot hide ``rm``.
"""

from __future__ import annotations

import re

from tend.execution.policy.argv import command_name
from tend.execution.policy.devices import is_harmless_sink
from tend.execution.policy.getopt import match_long
from tend.execution.policy.knowledge import (
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    read,
    spec,
)
from tend.execution.policy.paths import normalise
from tend.execution.policy.wrappers import wrapper_options

_NICE_LEGACY = re.compile(r"-[-+]?\d.*")


def judge_nice(argv: list[str], ctx: Context) -> list[Finding]:
    """``nice [-n N | -N | --adjustment=N] COMMAND``: judged by the command.

    Parsed as GNU nice does: ``-N``, ``--N`` and ``-+N`` are adjustments, ``-n`` takes a signed
    value (``-n+5``), long options may be abbreviated (``--adj=5``) and may repeat.
    """
    longs = ("--adjustment", "--help", "--version")
    index = 1
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--":
            break
        if _NICE_LEGACY.fullmatch(arg):
            continue
        if arg.startswith("--"):
            given, eq, _ = arg.partition("=")
            option = match_long(given, longs)
            if option is None or (eq and option != "--adjustment"):
                return change(ctx, argv, f"nice option {arg} is not understood")
            if option != "--adjustment":
                return read(ctx, argv, f"nice {option} only prints information")
            index += 0 if eq else 1
        elif arg.startswith("-n"):
            index += 0 if arg[2:] else 1
        elif arg.startswith("-") and arg != "-":
            return change(ctx, argv, f"nice option {arg} is not understood")
        else:
            index -= 1
            break
    if index >= len(argv):
        return read(ctx, argv, "nice without a command only prints the niceness")
    return ctx.run(argv[index:], "nice")


def judge_time(argv: list[str], ctx: Context) -> list[Finding]:
    """``time [-p] [-f FMT] [-o FILE [-a]] COMMAND`` (bash keyword or GNU time).

    ``-o``/``--output`` writes the timings to a file (change unless it is a harmless sink).
    """
    seen, index, unknown = wrapper_options(
        argv,
        "-f -o --format --output",
        "-a -p -q -v -V --append --portability --quiet --verbose --help --version",
    )
    if unknown is not None:
        return change(ctx, argv, f"time option {unknown} is not understood")
    if seen.keys() & {"--help", "-V", "--version"}:
        return read(ctx, argv, "time --help/--version only prints information")
    findings: list[Finding] = []
    for output in (seen.get("-o"), seen.get("--output")):
        if output is not None and not all(
            is_harmless_sink(normalise(output, cwd)) for cwd in ctx.cwds
        ):
            findings += change(ctx, argv, f"time -o writes its timings to {display(output)}")
    if index >= len(argv):
        return read(ctx, argv, "time without a command runs nothing") + findings
    return ctx.run(argv[index:], "time") + findings


def judge_ionice(argv: list[str], ctx: Context) -> list[Finding]:
    """``ionice``: changing another process (``-p``) is a change; else judged by the command."""
    values = "-c --class -n --classdata -p --pid -P --pgid -u --uid"
    seen, index, unknown = wrapper_options(argv, values, "-t --ignore -h --help -V --version")
    if unknown is not None:
        return change(ctx, argv, f"ionice option {unknown} is not understood")
    if seen.keys() & {"-p", "--pid", "-P", "--pgid", "-u", "--uid"}:
        if seen.keys() & {"-c", "--class", "-n", "--classdata"}:
            return change(ctx, argv, "ionice -p changes the I/O priority of running processes")
        return read(ctx, argv, "ionice -p only shows I/O priorities")
    if index >= len(argv):
        return read(ctx, argv, "ionice without a command only shows the I/O priority")
    return ctx.run(argv[index:], "ionice")


_SCHED_VALUES = {
    "chrt": "-D -P -T --sched-deadline --sched-period --sched-runtime",
    "taskset": "",
}
_SCHED_FLAGS = {
    "chrt": "-a -b -d -e -f -h -i -m -o -p -R -r -v -V --all-tasks --batch --deadline --ext "
    "--fifo --help --idle --max --other --pid --reset-on-fork --rr --verbose --version",
    "taskset": "-a -c -h -p -V --all-tasks --cpu-list --help --pid --version",
}


def judge_pid_or_command(argv: list[str], ctx: Context) -> list[Finding]:
    """``chrt``/``taskset``: ``-p`` with a value changes a process; else judged by the command."""
    name = command_name(argv[0])
    seen, index, unknown = wrapper_options(argv, _SCHED_VALUES[name], _SCHED_FLAGS[name])
    if unknown is not None:
        return change(ctx, argv, f"{name} option {unknown} is not understood")
    operands = argv[index:]
    if seen.keys() & {"-p", "--pid"}:
        if len(operands) >= 2:
            return change(ctx, argv, f"{name} -p changes the scheduling of a running process")
        return read(ctx, argv, f"{name} -p only shows the scheduling of a process")
    if seen.keys() & {"-m", "--max", "-h", "--help", "-V", "--version"} or len(operands) < 2:
        return read(ctx, argv, f"{name} without a command only shows scheduling information")
    return ctx.run(operands[1:], name)


_XARGS_VALUES = (
    "-a -E -I -L -n -s -P -d --arg-file --delimiter --max-args --max-chars --max-procs "
    "--process-slot-var"
)
_XARGS_FLAGS = (
    "-0 -o -p -r -t -x --null --interactive --open-tty --no-run-if-empty --show-limits "
    "--verbose --exit --help --version"
)


def judge_xargs(argv: list[str], ctx: Context) -> list[Finding]:
    """``xargs CMD``: judged by ``CMD``, and at least change (its arguments come from input)."""
    seen, index, unknown = wrapper_options(
        argv, _XARGS_VALUES, _XARGS_FLAGS, "-e -i -l --eof --replace --max-lines"
    )
    if unknown is not None:
        return change(ctx, argv, f"xargs option {unknown} is not understood")
    command = argv[index:] or ["echo"]
    inner = ctx.run(command, "xargs")
    reason = (
        f"xargs runs {command_name(command[0])} with arguments read from its input, "
        "which cannot be judged in advance"
    )
    findings = [*inner, ctx.floor("xargs", reason, argv, inner)]
    files = [value for key, value in seen.items() if key in {"-a", "--arg-file"} and value]
    secret = ctx.secret(files)
    if secret is not None:
        findings += change(ctx, argv, f"xargs reads {secret}")
    return findings


SPECS: list[CommandSpec] = [
    spec("nice", judge_nice, check_secrets=False),
    spec("ionice", judge_ionice, check_secrets=False),
    spec("chrt taskset", judge_pid_or_command, check_secrets=False),
    spec("time", judge_time, check_secrets=False),
    spec("xargs", judge_xargs, check_secrets=False),
]
