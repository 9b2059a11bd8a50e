"""Follow a parsed shell string in order: working directories, function calls and loops.

A function definition never lowers a judgement: a command whose name is also a function of the
string is judged as the real command *and*, at the call, as the function's body (with the
working directories known there). Functions stay known inside ``eval``, ``trap`` and
substitutions run by the same string. Working directories are followed through ``cd``,
``pushd``, ``eval``, ``trap`` and function calls; a directory that cannot be known (``cd $X``,
``cd -``, ``source``, too many candidates) is *unknown*, which includes ``/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from tend.execution.policy.argv import UNKNOWN
from tend.execution.policy.knowledge import Finding
from tend.execution.policy.paths import normalise
from tend.execution.policy.shell import SimpleCommand, parse_script
from tend.execution.policy.shell_lexer import ShellSyntaxError

Cwds = tuple[str | None, ...]

MAX_CWDS = 8
"""Most working directories followed; beyond, the directory is unknown (it may be ``/``)."""

MAX_CALLS = 5000
"""Most commands judged again in function calls for one command line; beyond, it cannot be
reviewed reliably."""

UNKNOWN_CWDS: Cwds = (None, "/")
"""An unknown working directory: anything, so ``/`` too."""

_PREFIXES = frozenset({"command", "builtin"})
_SOURCES = frozenset({"source", "."})
_MAX_EVAL_DEPTH = 4


@dataclass(slots=True)
class Functions:
    """The shell functions known where a string is judged, and the calls followed so far."""

    bodies: dict[str, list[SimpleCommand]] = field(default_factory=dict)
    calls: int = 0
    exhausted: bool = False


_KNOWN: ContextVar[Functions | None] = ContextVar("tend_shell_functions", default=None)


def enter_functions(
    commands: Iterable[SimpleCommand],
) -> tuple[Functions, Token[Functions | None]]:
    """Make the functions defined by ``commands`` known (with the enclosing strings' ones).

    Returns:
        The table and a token for :func:`leave_functions`.
    """
    outer = _KNOWN.get()
    commands = [command for command in commands if command.function is not None]
    if outer is not None and not commands:
        return outer, _KNOWN.set(outer)
    table = Functions(
        bodies={name: list(body) for name, body in (outer.bodies if outer else {}).items()},
        calls=outer.calls if outer else 0,
    )
    for command in commands:
        if command.function is not None:  # always true; narrows the type
            table.bodies.setdefault(command.function, []).append(command)
    return table, _KNOWN.set(table)


def leave_functions(table: Functions, token: Token[Functions | None]) -> None:
    """Restore the enclosing table, carrying the count of calls followed over."""
    _KNOWN.reset(token)
    outer = _KNOWN.get()
    if outer is not None:
        outer.calls = table.calls
        outer.exhausted = outer.exhausted or table.exhausted


def recursive_functions(bodies: dict[str, list[SimpleCommand]]) -> list[str]:
    """Functions that call themselves, directly or through other functions (fork bombs).

    The strongly connected components of the call graph (Tarjan's algorithm, iterative).
    """
    calls = {
        name: sorted({c.words[0] for c in body if c.words and c.words[0] in bodies})
        for name, body in bodies.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    recursive: list[str] = []
    for root in sorted(calls):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(calls[node]):
                work.append((node, child + 1))
                callee = calls[node][child]
                if callee not in index:
                    work.append((callee, 0))
                elif callee in on_stack:
                    low[node] = min(low[node], index[callee])
                continue
            for callee in calls[node]:
                if callee in on_stack:
                    low[node] = min(low[node], low[callee])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in calls[node]:
                    recursive += component
    return sorted(recursive)


def _merge(new: Iterable[str | None], cwds: Cwds) -> Cwds:
    merged = tuple(dict.fromkeys([*new, *cwds]))
    if len(merged) > MAX_CWDS:
        merged = tuple(dict.fromkeys([*UNKNOWN_CWDS, *merged[: MAX_CWDS - 2]]))
    return merged


def _cd(words: list[str], cwds: Cwds, *, cdpath: bool) -> Cwds:
    targets = [w for w in words[1:] if not w.startswith(("-", "+")) or w == "-"]
    if words[0] == "popd" or (words[0] == "pushd" and not targets):
        return cwds  # back to a directory already among the candidates
    target = targets[0] if targets else "~"
    if target == "-" or UNKNOWN in target:
        return _merge(UNKNOWN_CWDS, cwds)
    new: list[str | None] = [normalise(target, cwd) for cwd in cwds]
    if cdpath and not target.startswith(("/", ".", "~")):
        new += UNKNOWN_CWDS  # CDPATH may hold any directory, / included
    return _merge(new, cwds)


def _inner(text: str, cwds: Cwds, *, cdpath: bool, depth: int) -> Cwds:
    """Working directories after running ``text`` (``eval``, a trap action)."""
    if depth > _MAX_EVAL_DEPTH:
        return _merge(UNKNOWN_CWDS, cwds)
    try:
        commands = parse_script(text).commands
    except ShellSyntaxError:
        return _merge(UNKNOWN_CWDS, cwds)
    for command in commands:
        cwds = next_cwds(command, cwds, cdpath=cdpath, depth=depth + 1)
    return cwds


def next_cwds(command: SimpleCommand, cwds: Cwds, *, cdpath: bool = False, depth: int = 0) -> Cwds:
    """Working directories after ``command``; every earlier one stays (``cd`` may fail).

    Args:
        command: The command run.
        cwds: The working directories before it.
        cdpath: Whether ``CDPATH`` may be set, so ``cd NAME`` may go anywhere.
        depth: How many ``eval``/``trap`` strings deep this is.

    Returns:
        The possible working directories after it.
    """
    words = command.words
    while words and words[0] in _PREFIXES:
        rest = words[1:]
        while rest and rest[0].startswith("-") and rest[0] != "-":
            rest = rest[1:]
        words = rest
    if not words:
        return cwds
    name = words[0]
    if name in {"cd", "pushd", "popd"}:
        return _cd(words, cwds, cdpath=cdpath)
    if name in _SOURCES:
        return _merge(UNKNOWN_CWDS, cwds)
    args = words[1:]
    if name == "trap":
        args = [arg for arg in args if arg != "--"][:1]
    if name in {"eval", "trap"} and args:
        return _inner(" ".join(args), cwds, cdpath=cdpath, depth=depth)
    return cwds


JudgeCommand = Callable[[SimpleCommand, Cwds], list[Finding]]


@dataclass(slots=True)
class Walker:
    """Judge commands in order, following working directories and function calls."""

    judge: JudgeCommand
    functions: Functions
    cdpath: bool = False
    findings: list[Finding] = field(default_factory=list)

    def run(self, commands: list[SimpleCommand], cwds: Cwds, active: frozenset[str]) -> Cwds:
        """Judge ``commands`` starting in ``cwds``; return the working directories after them.

        Commands of a function body are judged where the function is defined and again at
        each call; ``active`` holds the functions being followed (recursion is not re-entered).
        """
        for command in commands:
            self.findings += self.judge(command, cwds)
            name = command.words[0] if command.words else ""
            body = self.functions.bodies.get(name)
            calls = active or command.function is None
            if body is not None and calls and name not in active:
                if self.functions.calls + len(body) > MAX_CALLS:
                    self.functions.exhausted = True
                else:
                    self.functions.calls += len(body)
                    cwds = self.run(body, cwds, active | {name})
            cwds = next_cwds(command, cwds, cdpath=self.cdpath)
        return cwds
