"""Builtin arguments that are code or variable names in disguise.

bash evaluates array subscripts arithmetically, running the command substitutions in them, when
a *quoted* ``a[$(cmd)]`` reaches ``let``, ``declare -i``, ``read``, ``printf -v``, ``test -v``,
``[[ ... ]]`` and similar builtins: ``let 'a[$(rm -rf /)]'`` runs ``rm``. Builtins that set a
variable named by an argument (``read PATH``, ``printf -v PATH``, ``getopts o PATH``) are
judged like the assignment ``PATH=...``.
"""

from __future__ import annotations

import re

from tend.execution.policy.argv import words
from tend.execution.policy.shell import SimpleCommand
from tend.execution.policy.shell_lexer import Lexer, ShellSyntaxError

_EVALUATING = words(
    "let declare typeset local export readonly read mapfile readarray wait unset getopts"
)
_OPTION_TARGETS = {"printf": "-v", "test": "-v", "[": "-v", "wait": "-p"}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _after(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i in range(len(args) - 1) if args[i] == option]


def hidden_code(command: SimpleCommand) -> list[str]:
    """Shell code that bash may run from the literal text of ``command``'s arguments.

    Args:
        command: A parsed simple command (or ``[[ ... ]]``).

    Returns:
        The bodies of the command substitutions written inside its arguments; an argument that
        cannot be tokenised is returned whole.
    """
    if command.construct == "[[":
        args = command.construct_words
    elif not command.words:
        return []
    else:
        name, args = command.words[0], command.words[1:]
        if name in _OPTION_TARGETS:
            args = _after(args, _OPTION_TARGETS[name])
        elif name not in _EVALUATING:
            return []
    texts: list[str] = []
    for arg in args:
        if "[" not in arg or ("$(" not in arg and "`" not in arg):
            continue  # bash only runs substitutions written inside a subscript
        lexer = Lexer(arg)
        try:
            lexer.run()
        except ShellSyntaxError:
            texts.append(arg)
        else:
            texts += lexer.substitutions
    return texts


def assigned_names(words: list[str]) -> list[str]:
    """Variables a builtin sets by name: ``read NAME``, ``printf -v NAME``, ``let NAME=...``.

    Args:
        words: The command's words.

    Returns:
        The variable names (array subscripts removed).
    """
    if not words:
        return []
    name, args = words[0], words[1:]
    names: list[str] = []
    if name in {"printf", "wait"}:
        names = _after(args, _OPTION_TARGETS[name])
    elif name == "getopts":
        names = args[1:2]
    elif name == "let":
        names = [match.group(0) for arg in args for match in _NAME_RE.finditer(arg)]
    elif name == "read":
        names = [arg for arg in args if not arg.startswith("-")]  # option values too: stricter
    result = []
    for text in names:
        match = _NAME_RE.match(text)
        result.append(match.group(0) if match else text)
    return result
