"""Judging shell strings (``sh -c STRING``): every command, redirection and substitution in them.

The string is parsed by :mod:`~tend.execution.policy.shell`; its commands are followed in order
by :mod:`~tend.execution.policy.shell_flow` (working directories, function calls, loops) and
each is judged by the engine. Substitutions, ``case`` remainders the lexer is unsure about and
builtin arguments bash evaluates as code are judged as shell strings too.
"""

from __future__ import annotations

from dataclasses import replace

from tend.execution.policy.argv import UNKNOWN, command_name
from tend.execution.policy.devices import is_harmless_sink, possible_device
from tend.execution.policy.knowledge import CHANGE, FORBIDDEN, READ, Context, Finding, display
from tend.execution.policy.paths import normalise, secret_kind
from tend.execution.policy.shell import Redirect, Script, SimpleCommand, parse_script
from tend.execution.policy.shell_builtins import assigned_names, hidden_code
from tend.execution.policy.shell_flow import (
    MAX_CALLS,
    Functions,
    Walker,
    enter_functions,
    leave_functions,
    recursive_functions,
)
from tend.execution.policy.shell_lexer import ShellSyntaxError
from tend.execution.policy.shell_words import expand_braces
from tend.execution.policy.wrappers import unsafe_assignment

MAX_DEPTH = 8
"""Deepest nesting of wrappers, shells and substitutions judged; deeper is forbidden."""

_BLOCK = {"disk", "partition", "memory"}
_WRITES = {">", ">>", ">|", "&>", "&>>", "<>", ">&"}
_STDIN_SHELLS = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "ash",
        "mksh",
        "rbash",
        "yash",
        "posh",
        "lksh",
        "source",
        ".",
    }
)


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
    return _judge_text(text, ctx, remainders=True)


def _judge_text(text: str, ctx: Context, *, remainders: bool) -> list[Finding]:
    deep = too_deep(ctx)
    if deep is not None:
        return deep
    ctx = replace(ctx, in_shell=True)
    try:
        script = parse_script(text)
    except ShellSyntaxError as error:
        return [ctx.verdict(CHANGE, f"the shell string cannot be analysed ({error})", None)]
    functions, token = enter_functions(script.commands)
    try:
        findings = _judge_script(script, ctx, functions, cdpath="CDPATH" in text)
        if remainders:
            inner = replace(ctx, depth=ctx.depth + 1)
            for remainder in script.remainders:
                reason = "the shell string has a case command inside a substitution"
                findings.append(ctx.verdict(CHANGE, reason, None))
                findings += _judge_text(remainder, inner, remainders=False)
    finally:
        leave_functions(functions, token)
    return findings


def _judge_script(
    script: Script, ctx: Context, functions: Functions, *, cdpath: bool
) -> list[Finding]:
    walker = Walker(lambda c, cwds: _judge_simple(c, replace(ctx, cwds=cwds)), functions, cdpath)
    cwds = walker.run(script.commands, ctx.cwds, frozenset())
    if script.loops:  # a loop runs its commands again in the directories reached
        cwds = walker.run(script.commands, cwds, frozenset())
    findings = walker.findings
    anywhere = replace(ctx, cwds=tuple(dict.fromkeys([*ctx.cwds, *cwds])))
    for command in script.commands:  # a trap runs later, wherever the shell then is
        if command.words[:1] == ["trap"]:
            findings += ctx.dispatch(command.words, anywhere)
    if script.functions:
        names = ", ".join(f"{name}()" for name in sorted(script.functions))
        reason = f"the shell string defines functions ({names}) whose use cannot be fully known"
        findings.append(ctx.verdict(CHANGE, reason, None))
    for name in recursive_functions(functions.bodies) if script.functions else []:
        reason = f"the shell string defines the self-calling function {name}(), a fork bomb"
        findings.append(ctx.verdict(FORBIDDEN, reason, None))
    if functions.exhausted:
        reason = f"the shell string runs more than {MAX_CALLS} commands through function calls, "
        findings.append(ctx.verdict(FORBIDDEN, reason + "which cannot be reviewed reliably", None))
    for issue in script.issues:
        findings.append(ctx.verdict(CHANGE, f"the shell string {issue}", None))
    inner = replace(anywhere, depth=ctx.depth + 1)
    for substitution in script.substitutions:
        reason = "the shell string runs a command substitution whose output cannot be judged"
        findings.append(ctx.verdict(CHANGE, reason, None))
        findings += judge_shell_string(substitution, inner)
    if not findings:
        findings.append(ctx.verdict(READ, "the shell string runs nothing", None))
    return findings


def _judge_simple(command: SimpleCommand, ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for name, value in command.assignments:
        reason = unsafe_assignment(name, value)
        if reason is not None:
            findings.append(ctx.verdict(CHANGE, f"the shell string: {reason}", None))
        if name == "BASH_ALIASES":  # BASH_ALIASES[ls]='code' defines an alias
            findings += judge_shell_string(value, replace(ctx, depth=ctx.depth + 1))
    words = command.words
    for redirect in command.redirects:
        findings += _judge_redirect(redirect, ctx, words)
    findings += _judge_builtin_args(command, ctx)
    if not words:
        return findings or [ctx.verdict(READ, "the shell string only sets shell variables", None)]
    if any(UNKNOWN in word for word in words):
        reason = (
            f"{display(command_name(words[0]))} uses values only known at run time "
            "(variables, substitutions), which cannot be judged in advance"
        )
        findings.append(ctx.verdict(CHANGE, reason, None, command=command_name(words[0])))
    expanded = [part for word in words for part in expand_braces(word)]
    if expanded and expanded != words:
        findings += ctx.dispatch(expanded, ctx)
    return ctx.dispatch(words, ctx) + findings


def _judge_builtin_args(command: SimpleCommand, ctx: Context) -> list[Finding]:
    """Array subscripts that bash evaluates, and variables set by name (``read PATH``)."""
    findings: list[Finding] = []
    name = command_name(command.words[0]) if command.words else command.construct or "sh"
    for text in hidden_code(command):
        reason = f"{display(name)} evaluates an array subscript holding a command substitution"
        findings.append(ctx.verdict(CHANGE, reason, None, command=name))
        findings += judge_shell_string(text, replace(ctx, depth=ctx.depth + 1))
    for variable in assigned_names(command.words):
        unsafe = unsafe_assignment(variable, UNKNOWN)
        if unsafe is not None:
            findings.append(ctx.verdict(CHANGE, f"{display(name)}: {unsafe}", None, command=name))
    return findings


def _judge_redirect(redirect: Redirect, ctx: Context, words: list[str]) -> list[Finding]:
    op, target = redirect.op, redirect.target
    command = command_name(words[0]) if words else None
    if op == "<<<" and command in _STDIN_SHELLS:  # bash <<< 'code', source /dev/stdin <<< ...
        return judge_shell_string(target, replace(ctx, depth=ctx.depth + 1))
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
