"""A small, strict parser for shell strings (``sh -c STRING``, ``su -c``, ``ssh HOST CMD`` ...).

It follows POSIX ``sh`` quoting (the rules :mod:`shlex` implements in POSIX mode) and adds the
structure ``shlex`` cannot see: operators (``;``, ``&&``, ``||``, ``|``, ``&``, newlines),
redirections with their file descriptors, command substitutions (``$(...)``, backticks),
process substitutions (``<(...)``, ``>(...)``), parameter and arithmetic expansions, groups,
subshells and function definitions. The text of every substitution is kept so that the
commands inside can be judged too. Text only known at run time (``$HOME``, ``$(...)``) is
replaced in words by :data:`~tend.execution.policy.argv.UNKNOWN`. Anything the parser does not
understand is reported as an *issue*; the policy then treats the string as at least ``change``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tend.execution.policy.argv import words
from tend.execution.policy.shell_lexer import Lexer, Token

REDIRECTIONS = words("< > >> <> >| &> &>> >& <& << <<- <<<")
_SEPARATORS = frozenset([";", "&", "&&", "||", "|", "|&", "\n"])
_CASE_SEPARATORS = frozenset([";;", ";&", ";;&"])
_TRANSPARENT = frozenset(
    {"if", "then", "elif", "else", "fi", "do", "done", "while", "until", "!", "time", "coproc"}
)
_UNANALYSED = frozenset({"for", "select", "case", "esac", "in", "[[", "]]", "(("})
_LOOPS = frozenset({"while", "until", "for", "select"})
_ASSIGNMENT_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?=(.*)", re.DOTALL)


@dataclass(slots=True)
class Redirect:
    """A redirection such as ``2>/dev/null`` (``fd="2"``, ``op=">"``, ``target="/dev/null"``)."""

    op: str
    target: str
    fd: str | None = None


@dataclass(slots=True)
class SimpleCommand:
    """A simple command: assignments, words and redirections, with its enclosing function."""

    words: list[str] = field(default_factory=list)
    assignments: list[tuple[str, str]] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    function: str | None = None
    construct: str | None = None
    construct_words: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        """Whether nothing was collected yet."""
        return not (self.words or self.assignments or self.redirects or self.construct)


@dataclass(slots=True)
class Script:
    """The parsed form of a shell string."""

    commands: list[SimpleCommand] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=list)
    remainders: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    loops: bool = False


class _Parser:
    """Group tokens into simple commands, tracking groups, subshells and functions."""

    def __init__(self, tokens: list[Token], script: Script) -> None:
        self.tokens = tokens
        self.script = script
        self.index = 0
        self.groups: list[tuple[str, str | None]] = []
        self.pending_function: str | None = None
        self.expect_function_name = False
        self.after_time = False
        self.current = SimpleCommand()

    def _enclosing(self) -> str | None:
        return self.groups[-1][1] if self.groups else None

    def _finish(self) -> None:
        if not self.current.empty():
            self.script.commands.append(self.current)
        self.current = SimpleCommand(function=self._enclosing())

    def _open(self, closer: str) -> None:
        self.groups.append((closer, self.pending_function or self._enclosing()))
        self.pending_function = None
        self.current.function = self._enclosing()

    def _close(self, closer: str) -> bool:
        if self.groups and self.groups[-1][0] == closer:
            self.groups.pop()
            self.current.function = self._enclosing()
            return True
        return False

    def _next_is(self, value: str) -> bool:
        return self.index < len(self.tokens) and self.tokens[self.index].value == value

    def _operator(self, token: Token) -> None:
        op, current, issues = token.value, self.current, self.script.issues
        self.after_time = False
        if op in _SEPARATORS or op in _CASE_SEPARATORS:
            if op in _CASE_SEPARATORS:
                issues.append("uses a case statement")
            self._finish()
        elif op in REDIRECTIONS:
            if self.index >= len(self.tokens) or self.tokens[self.index].kind != "word":
                issues.append(f"has a redirection '{op}' without a target")
                return
            current.redirects.append(Redirect(op, self.tokens[self.index].value, token.fd))
            self.index += 1
            if op in {"<<", "<<-", "<<<"}:
                issues.append("uses a here-document or here-string")
        elif op == "(":
            if self._next_is(")") and len(current.words) == 1 and not current.assignments:
                self.pending_function = current.words[0]
                self.script.functions.add(current.words[0])
                self.current = SimpleCommand(function=current.function)
                self.index += 1
            elif self._next_is(")") and current.empty() and self.pending_function is not None:
                self.index += 1
            elif current.empty():
                self._open(")")
            else:
                issues.append("uses '(' in an unexpected place")
                self._finish()
        elif op == ")":
            self._finish()
            if not self._close(")"):
                issues.append("has an unmatched ')'")

    def _reserved(self, word: str) -> bool:
        """Handle a reserved word at the start of a command; ``False`` if ``word`` is not one."""
        if word == "{":
            self._finish()
            self._open("}")
        elif word == "}" and self.groups and self.groups[-1][0] == "}":
            self._finish()
            self._close("}")
        elif word == "function":
            self.expect_function_name = True
        elif word in _UNANALYSED:
            self.current.construct = word
            self.script.issues.append(f"uses the shell construct '{word}'")
        elif word in _TRANSPARENT:
            self._transparent(word)
        else:
            return False
        self.script.loops = self.script.loops or word in _LOOPS
        return True

    def _transparent(self, word: str) -> None:
        """``time`` (with ``-p``), ``coproc`` (with a NAME before a compound command) ..."""
        self.after_time = word == "time"
        if word != "coproc":
            return
        self.script.issues.append("uses the shell construct 'coproc'")
        tokens, index = self.tokens, self.index
        if index + 1 < len(tokens) and tokens[index].kind == "word":
            following = tokens[index + 1]
            if following.value in {"{", "("} and not following.quoted:
                self.index += 1

    def _word(self, token: Token) -> None:
        word, current = token.value, self.current
        if self.expect_function_name:
            self.expect_function_name = False
            self.pending_function = word
            self.script.functions.add(word)
            return
        starts = not current.words and not current.construct
        if starts and self.after_time and word in {"-p", "--"}:
            self.after_time = word == "-p"
            return
        self.after_time = False
        if starts and not token.quoted and self._reserved(word):
            return
        assignment = _ASSIGNMENT_RE.fullmatch(word) if starts else None
        if assignment is not None:
            current.assignments.append((assignment.group(1), assignment.group(2)))
        elif not current.construct:
            current.words.append(word)
        elif word == "do" and not token.quoted and current.construct in {"for", "select"}:
            self._finish()
        else:
            current.construct_words.append(word)

    def run(self) -> Script:
        while self.index < len(self.tokens):
            token = self.tokens[self.index]
            self.index += 1
            if token.kind == "op":
                self._operator(token)
            else:
                self._word(token)
        self._finish()
        if self.groups:
            self.script.issues.append("has an unclosed group or subshell")
        return self.script


def parse_script(text: str) -> Script:
    """Parse a shell string into simple commands.

    Args:
        text: The shell source, e.g. the STRING of ``sh -c STRING``.

    Returns:
        The commands, the text of every command/process substitution, the issues (constructs
        the policy does not analyse) and the shell functions defined.

    Raises:
        ShellSyntaxError: The string cannot be tokenised (unterminated quote or substitution).
    """
    lexer = Lexer(text)
    tokens = lexer.run()
    script = Script(
        substitutions=lexer.substitutions, remainders=lexer.remainders, issues=lexer.issues
    )
    return _Parser(tokens, script).run()
