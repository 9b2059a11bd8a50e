"""Shells and interpreters: ``sh -c STRING`` is parsed and every command in it is judged.

Interpreters (``python``, ``perl``, ``awk`` ...) run code that cannot be judged, so they are a
change; so is a shell running a script file or an interactive shell. Builtins that evaluate
code (``eval``, ``trap``, ``source`` ...) are at least a change; the strings given to ``eval``
and ``trap`` are judged as shell code too.
"""

from __future__ import annotations

from dataclasses import replace

from tend.execution.policy.argv import UNKNOWN, command_name
from tend.execution.policy.devices import is_harmless_sink, possible_device
from tend.execution.policy.knowledge import (
    CHANGE,
    FORBIDDEN,
    READ,
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    read,
    spec,
)
from tend.execution.policy.paths import normalise, secret_kind
from tend.execution.policy.shell import Redirect, SimpleCommand, parse_script
from tend.execution.policy.shell_lexer import ShellSyntaxError
from tend.execution.policy.wrappers import unsafe_assignment

MAX_DEPTH = 8
"""Deepest nesting of wrappers, shells and substitutions judged; deeper is forbidden."""

_BLOCK = {"disk", "partition", "memory"}
_WRITES = {">", ">>", ">|", "&>", "&>>", "<>", ">&"}


def too_deep(ctx: Context) -> list[Finding] | None:
    """The ``forbidden`` finding for nesting beyond :data:`MAX_DEPTH`, if reached."""
    if ctx.depth <= MAX_DEPTH:
        return None
    reason = (
        f"the command is nested more than {MAX_DEPTH} wrappers or shells deep, "
        "which no legitimate command needs and cannot be reviewed reliably"
    )
    return [ctx.verdict(FORBIDDEN, reason, None)]


def judge_shell_string(text: str, ctx: Context) -> list[Finding]:
    """Judge a shell string: each simple command, redirection and substitution in it.

    Args:
        text: Shell source (the STRING of ``sh -c STRING``).
        ctx: The context; ``ctx.wrappers`` ends with the shell that runs the string.

    Returns:
        All findings; the most dangerous one decides.
    """
    deep = too_deep(ctx)
    if deep is not None:
        return deep
    ctx = replace(ctx, in_shell=True)
    try:
        script = parse_script(text)
    except ShellSyntaxError as error:
        return [ctx.verdict(CHANGE, f"the shell string cannot be analysed ({error})", None)]
    findings: list[Finding] = []
    cwds = ctx.cwds
    for command in script.commands:
        findings += _judge_simple(command, replace(ctx, cwds=cwds), script.functions)
        cwds = _next_cwds(command, cwds)
    for name in sorted(script.self_calling):
        reason = f"the shell string defines the self-calling function {name}(), a fork bomb"
        findings.append(ctx.verdict(FORBIDDEN, reason, None))
    for issue in script.issues:
        findings.append(ctx.verdict(CHANGE, f"the shell string {issue}", None))
    for substitution in script.substitutions:
        reason = "the shell string runs a command substitution whose output cannot be judged"
        findings.append(ctx.verdict(CHANGE, reason, None))
        findings += judge_shell_string(substitution, replace(ctx, depth=ctx.depth + 1))
    if not findings:
        findings.append(ctx.verdict(READ, "the shell string runs nothing", None))
    return findings


def _judge_simple(command: SimpleCommand, ctx: Context, functions: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    for name, value in command.assignments:
        reason = unsafe_assignment(name, value)
        if reason is not None:
            findings.append(ctx.verdict(CHANGE, f"the shell string: {reason}", None))
    words = command.words
    for redirect in command.redirects:
        findings += _judge_redirect(redirect, ctx, command_name(words[0]) if words else None)
    if not words:
        return findings or [ctx.verdict(READ, "the shell string only sets shell variables", None)]
    if any(UNKNOWN in word for word in words):
        reason = (
            f"{display(command_name(words[0]))} uses values only known at run time "
            "(variables, substitutions), which cannot be judged in advance"
        )
        findings.append(ctx.verdict(CHANGE, reason, None, command=command_name(words[0])))
    if words[0] in functions:
        findings.append(ctx.verdict(READ, f"{words[0]} calls a function of the same string", None))
        return findings
    return ctx.dispatch(words, ctx) + findings


def _judge_redirect(redirect: Redirect, ctx: Context, command: str | None) -> list[Finding]:
    op, target = redirect.op, redirect.target
    if op in {"<<", "<<-", "<<<"} or (op in {">&", "<&"} and (target.isdigit() or target == "-")):
        return []
    paths = [normalise(target, cwd) for cwd in ctx.cwds]
    findings: list[Finding] = []
    if op in {"<", "<>"}:
        for path in paths:
            kind = secret_kind(path, globbing=True)
            if kind is not None:
                reason = f"the shell string reads {display(target)} ({kind})"
                findings.append(ctx.verdict(CHANGE, reason, None, command=command))
                break
    if op in _WRITES:
        if any(possible_device(path, globbing=True) in _BLOCK for path in paths):
            reason = f"the shell string writes directly to the raw device {display(target)}"
            return [ctx.verdict(FORBIDDEN, reason, None, command=command)]
        if not all(is_harmless_sink(path) for path in paths):
            reason = f"the shell string writes to {display(target)} through a redirection"
            findings.append(ctx.verdict(CHANGE, reason, None, command=command))
    return findings


def _next_cwds(command: SimpleCommand, cwds: tuple[str | None, ...]) -> tuple[str | None, ...]:
    """Working directories after ``command`` (``cd`` may or may not succeed)."""
    words = command.words
    if not words or words[0] not in {"cd", "pushd", "popd"}:
        return cwds
    targets = [word for word in words[1:] if not word.startswith("-") or word == "-"]
    target = targets[0] if targets else "~"
    if words[0] == "popd" or target == "-" or UNKNOWN in target:
        new: list[str | None] = [None]
    else:
        new = [normalise(target, cwd) for cwd in cwds]
    return tuple(dict.fromkeys([*new, *cwds]))[:4]


def judge_shell(argv: list[str], ctx: Context) -> list[Finding]:
    """``sh``/``bash``/``dash``/``zsh``/``ksh``/``ash``: ``-c STRING`` is parsed and judged.

    A script file or an interactive shell cannot be judged (change). ``-l``/``-i`` and
    ``--rcfile`` also run startup files (change).
    """
    name = command_name(argv[0])
    command_mode = startup = False
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg in {"--", "-"}:
            index += 1
            break
        if arg in {"--rcfile", "--init-file"}:
            startup = True
            index += 2
            continue
        if arg.startswith("--"):
            if arg in {"--version", "--help"}:
                return read(ctx, argv, f"{name} {arg} only prints information")
            startup = startup or arg == "--login"
            index += 1
            continue
        if arg[:1] not in {"-", "+"} or len(arg) < 2:
            break
        letters = arg[1:]
        command_mode = command_mode or "c" in letters
        startup = startup or bool({"l", "i"} & set(letters))
        index += 1 + sum(1 for letter in letters if letter in "oO")
    operands = argv[index:]
    if command_mode:
        if not operands:
            return change(ctx, argv, f"{name} -c without a command string is malformed")
        findings = ctx.run_shell(operands[0], name)
        if startup:
            findings += change(ctx, argv, f"{name} -l/-i also runs startup files")
        return findings
    if operands:
        return change(
            ctx, argv, f"{name} runs the script {display(operands[0])}, which cannot be judged"
        )
    return change(ctx, argv, f"{name} without -c starts an interactive shell or reads stdin")


def judge_interpreter(argv: list[str], ctx: Context) -> list[Finding]:
    """``python``/``perl``/``ruby``/``node``/``awk`` ...: change, except ``--version``."""
    name = command_name(argv[0])
    if argv[1:] in (["--version"], ["-V"], ["-VV"], ["-v"], ["--help"], ["-h"], ["-W", "version"]):
        return read(ctx, argv, f"{name} {' '.join(argv[1:])} only prints information")
    return change(ctx, argv, f"{name} runs code whose effect cannot be judged in advance")


def judge_cd(argv: list[str], ctx: Context) -> list[Finding]:
    """``cd``/``pushd``/``popd`` only change the shell's working directory."""
    return read(ctx, argv, f"{command_name(argv[0])} only changes the working directory")


def judge_eval(argv: list[str], ctx: Context) -> list[Finding]:
    """``eval ARGS``: the joined arguments are judged as shell code, and it is at least change."""
    name = command_name(argv[0])
    if name == "trap":
        if len(argv) < 3 or argv[1] in {"-l", "-p", "-", ""}:
            return read(ctx, argv, "trap without an action only lists or resets traps")
        inner = ctx.run_shell(argv[1], name)
        return [*inner, ctx.floor(name, "trap runs code when a signal arrives", argv, inner)]
    inner = ctx.run_shell(" ".join(argv[1:]), name)
    return [*inner, ctx.floor(name, "eval runs a string as shell code", argv, inner)]


def judge_export(argv: list[str], ctx: Context) -> list[Finding]:
    """``export``/``declare``/``local``...: harmless unless they set a risky variable."""
    for arg in argv[1:]:
        name, eq, value = arg.partition("=")
        if eq:
            reason = unsafe_assignment(name, value)
            if reason is not None:
                return change(ctx, argv, f"{command_name(argv[0])}: {reason}")
    return read(ctx, argv, f"{command_name(argv[0])} only sets shell variables")


SPECS: list[CommandSpec] = [
    spec("sh bash dash zsh ksh ash mksh rbash yash posh lksh", judge_shell, check_secrets=False),
    spec(
        "python pypy perl ruby node php lua tclsh wish awk Rscript deno bun irb jshell expect",
        judge_interpreter,
        check_secrets=False,
    ),
    spec("cd pushd popd", judge_cd),
    spec("export declare typeset local readonly", judge_export),
    spec(
        ": set shift exit return wait read type hash ulimit umask getopts break continue jobs "
        "times let unset dirs history",
        what="shell state",
    ),
    spec("eval trap", judge_eval, check_secrets=False),
    spec(
        "source . alias unalias enable fc mapfile readarray bind complete coproc",
        default=CHANGE,
        reason="{name} evaluates code or changes how commands are interpreted",
    ),
]
