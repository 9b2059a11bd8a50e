"""Where a ``$(...)`` ends: the grammar the lexer follows inside a command substitution.

A ``)`` ends ``$(`` unless it closes a subshell opened inside it or ends a ``case`` pattern
(``case x in x) ...;; esac``). :class:`SubstitutionTracker` is fed the tokens of the body in
order and says which ``)`` ends the substitution. Reserved words are recognised loosely where
that can only make the substitution longer (``case``) and strictly where it could make it
shorter (``esac``); the lexer compares the result with a plain bracket count and, when they
differ, also judges the text after the plain count's end as commands (fail closed).
"""

from __future__ import annotations

import re

_RESERVED = frozenset(
    [
        "if",
        "then",
        "else",
        "elif",
        "do",
        "while",
        "until",
        "!",
        "{",
        "}",
        "time",
        "coproc",
        "function",
        "-p",
        "--",
        "select",
        "for",
    ]
)
"""Words after which a command (or a compound command such as ``case``) may start."""

_STARTERS = frozenset([";", "&", "&&", "||", "|", "|&", "\n", ";;", ";&", ";;&"])
_CASE_ENDS = frozenset([";;", ";&", ";;&"])
_ASSIGNMENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=.*", re.DOTALL)

# Frames: "(" a subshell; the states of a case command: "subject" (the word after case),
# "in" (expecting in), "pattern" (first word of a pattern list), "patterns" (later words),
# "body" (the commands of a clause).
_CASE_HEAD = frozenset({"subject", "in"})
_PATTERNS = frozenset({"pattern", "patterns"})


class SubstitutionTracker:
    """Follow subshells and ``case`` commands inside a ``$(...)`` body, token by token."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.start = True
        self.loose = True
        self.function_name = False
        self.saw_case = False

    def _top(self) -> str:
        return self.frames[-1] if self.frames else ""

    def word(self, value: str, *, quoted: bool) -> None:
        """Feed a word token (``quoted`` when any part of it was quoted or escaped)."""
        top, plain = self._top(), not quoted
        if top == "subject":
            self.frames[-1] = "in"
            return
        if top == "in":
            if plain and value == "in":
                self.frames[-1] = "pattern"
            return
        if top == "pattern":
            if plain and value == "esac":
                self.frames.pop()
                self.start = self.loose = False
            else:
                self.frames[-1] = "patterns"
            return
        if top == "patterns":
            return
        start, loose = self.start, self.loose
        self.start = self.loose = False
        if self.function_name:
            self.function_name = False
            self.start = self.loose = True
        elif plain and loose and value == "case":
            self.frames.append("subject")
            self.saw_case = True
        elif plain and start and value == "esac" and top == "body":
            self.frames.pop()
        elif plain and value in _RESERVED:
            self.loose = True
            self.start = start
            self.function_name = start and value == "function"
        elif _ASSIGNMENT_RE.fullmatch(value):
            self.loose = True

    def operator(self, op: str) -> bool:
        """Feed an operator token; ``True`` when it is the ``)`` ending the substitution."""
        top = self._top()
        if top in _PATTERNS:
            if op == ")":
                self.frames[-1] = "body"
                self.start = self.loose = True
            elif op == "|":
                self.frames[-1] = "patterns"
            return False
        if top in _CASE_HEAD:
            return False
        if op in _CASE_ENDS and top == "body":
            self.frames[-1] = "pattern"
            return False
        if op == "(":
            self.frames.append("(")
            self.start = self.loose = True
            return False
        if op == ")":
            if top == "(":
                self.frames.pop()
                self.start = self.loose = True
                return False
            return top != "body"
        self.start = self.loose = op in _STARTERS
        return False
