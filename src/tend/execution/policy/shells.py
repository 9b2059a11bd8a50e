"""Shells and interpreters: ``sh -c STRING`` is parsed and every command in it is judged.

Interpreters (``python``, ``perl``, ``awk`` ...) run code that cannot be judged, so they are a
change; so is a shell running a script file or an interactive shell. Builtins that evaluate
code (``eval``, ``trap``, ``source`` ...) are at least a change; the strings given to ``eval``
and ``trap`` are judged as shell code too.
"""

from __future__ import annotations

from tend.execution.policy.argv import command_name
from tend.execution.policy.knowledge import (
    CHANGE,
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    read,
    spec,
)
from tend.execution.policy.shell_judge import MAX_DEPTH, judge_shell_string, too_deep
from tend.execution.policy.wrappers import unsafe_assignment

__all__ = ["MAX_DEPTH", "SPECS", "judge_shell_string", "too_deep"]


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
    """``eval ARGS``: the joined arguments are judged as shell code, and it is at least change.

    A leading ``--`` ends the options of both builtins: ``eval -- CODE``, ``trap -- CODE SIG``.
    """
    name = command_name(argv[0])
    if name == "trap":
        args = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        if len(args) < 2 or args[0] in {"-l", "-p", "-P", "-", ""}:
            return read(ctx, argv, "trap without an action only lists or resets traps")
        inner = ctx.run_shell(args[0], name)
        return [*inner, ctx.floor(name, "trap runs code when a signal arrives", argv, inner)]
    inner = ctx.run_shell(" ".join(argv[1:]), name)
    if argv[1:2] == ["--"]:
        inner += ctx.run_shell(" ".join(argv[2:]), name)
    return [*inner, ctx.floor(name, "eval runs a string as shell code", argv, inner)]


def judge_alias(argv: list[str], ctx: Context) -> list[Finding]:
    """``alias NAME=VALUE``: the value is shell code run wherever the alias is expanded.

    Aliases are expanded by ``sh`` and, after ``shopt -s expand_aliases``, by ``bash`` (on the
    next line or in ``eval``), so each value is judged as shell code; defining one is a change.
    """
    inner: list[Finding] = []
    for arg in argv[1:]:
        _, eq, value = arg.partition("=")
        if eq and not arg.startswith("-"):
            inner += ctx.run_shell(value, "alias")
    reason = "alias changes how commands are interpreted"
    return [*inner, ctx.floor("alias", reason, argv, inner)]


def judge_shell_state(argv: list[str], ctx: Context) -> list[Finding]:
    """Builtins that read or set shell state; ``hash -p`` and ``history`` options change it.

    ``hash -p FILE NAME`` makes ``NAME`` run ``FILE``; ``history -w/-a FILE`` writes a file
    (after ``set -o history``, with lines added by ``history -s``).
    """
    name = command_name(argv[0])
    options = {arg for arg in argv[1:] if arg.startswith("-")}
    if (name == "hash" and any("p" in option for option in options)) or (
        name == "history" and options
    ):
        return change(ctx, argv, f"{name} {' '.join(sorted(options))} changes shell state")
    if name == "let":
        return change(ctx, argv, "let assigns shell variables")
    return read(ctx, argv, f"{display(name)} only reads shell state")


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
        judge_shell_state,
    ),
    spec("eval trap", judge_eval, check_secrets=False),
    spec("alias", judge_alias, check_secrets=False),
    spec(
        "source . unalias enable fc mapfile readarray bind complete coproc",
        default=CHANGE,
        reason="{name} evaluates code or changes how commands are interpreted",
    ),
]
