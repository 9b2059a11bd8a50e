"""Tokeniser for shell strings: POSIX quoting, operators and substitutions.

Quotes are removed as :mod:`shlex` does in POSIX mode. Text that only exists at run time
(``$VAR``, ``${...}``, ``$(...)``, backticks, ``<(...)``) becomes
:data:`~tend.execution.policy.argv.UNKNOWN` in words, and the source of every command or process
substitution is collected so that the commands inside can be judged too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tend.execution.policy.argv import UNKNOWN, split_words

MAX_NESTING = 32
"""Deepest nesting of ``${...}``/``$((...))`` expansions the lexer follows."""

_OPERATORS = split_words("&>> ;;& <<< <<- && || |& ;; ;& >> << <> >| >& <& &> ; & | < > ( )")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ShellSyntaxError(ValueError):
    """The shell string cannot be parsed (unterminated quote or substitution ...)."""


@dataclass(slots=True)
class Token:
    """A word (quotes removed) or an operator; ``fd`` is the descriptor of a redirection."""

    kind: str  # "word" or "op"
    value: str
    quoted: bool = False
    fd: str | None = None


def _skip_backtick(text: str, index: int) -> int:
    """Return the index after the backtick closing the one at ``index`` (-1 when missing)."""
    pos = index + 1
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
        elif text[pos] == "`":
            return pos + 1
        else:
            pos += 1
    return -1


def find_close(text: str, start: int, closer: str) -> int:
    """Find the bracket closing a ``$(``, ``<(``, ``$((`` or ``${`` whose body starts at ``start``.

    Quotes, nested substitutions and backticks inside the body are skipped.

    Args:
        text: The whole string.
        start: Index just after the opening bracket.
        closer: ``")"`` or ``"}"``.

    Returns:
        The index of the closing bracket, or -1 when there is none.
    """
    stack = [closer]
    pos = start
    while pos < len(text):
        char = text[pos]
        nxt = text[pos + 1] if pos + 1 < len(text) else ""
        if char == "\\":
            pos += 2
            continue
        if char == "`":
            pos = _skip_backtick(text, pos)
            if pos < 0:
                return -1
            continue
        if stack[-1] == '"':
            if char == '"':
                stack.pop()
            elif char == "$" and nxt in "({":
                stack.append(")" if nxt == "(" else "}")
                pos += 1
        elif char == "'":
            end = text.find("'", pos + 1)
            if end < 0:
                return -1
            pos = end
        elif char == '"':
            stack.append('"')
        elif char == "$" and nxt == "{":
            stack.append("}")
            pos += 1
        elif char == "(":
            stack.append(")")
        elif char == stack[-1]:
            stack.pop()
            if not stack:
                return pos
        pos += 1
    return -1


class Lexer:
    """Split a shell string into word and operator tokens, collecting substitutions."""

    def __init__(self, text: str, depth: int = 0) -> None:
        if depth > MAX_NESTING:
            raise ShellSyntaxError("expansions are nested too deeply")
        self.text = text
        self.depth = depth
        self.pos = 0
        self.tokens: list[Token] = []
        self.substitutions: list[str] = []
        self.issues: list[str] = []
        self.buf: list[str] = []
        self.in_word = False
        self.quoted = False

    def _add(self, text: str, *, quoted: bool = False) -> None:
        self.buf.append(text)
        self.in_word = True
        self.quoted = self.quoted or quoted

    def _flush(self) -> None:
        if self.in_word:
            self.tokens.append(Token("word", "".join(self.buf), self.quoted))
        self.buf, self.in_word, self.quoted = [], False, False

    def _nested(self, body: str) -> None:
        """Collect the substitutions inside a ``${...}`` or ``$((...))`` body."""
        inner = Lexer(body, self.depth + 1)
        inner.run()
        self.substitutions.extend(inner.substitutions)
        self.issues.extend(inner.issues)

    def _close(self, start: int, closer: str, what: str) -> int:
        end = find_close(self.text, start, closer)
        if end < 0:
            raise ShellSyntaxError(f"unterminated {what}")
        return end

    def _dollar(self) -> None:
        text, pos = self.text, self.pos
        nxt = text[pos + 1] if pos + 1 < len(text) else ""
        if text.startswith("$((", pos):
            end = self._close(pos + 2, ")", "$((")
            self._nested(text[pos + 3 : end - 1] if text[end - 1 : end] == ")" else "")
            self.issues.append("uses arithmetic expansion $((...))")
            self.pos = end + 1
        elif nxt == "(":
            end = self._close(pos + 2, ")", "$(")
            self.substitutions.append(text[pos + 2 : end])
            self.pos = end + 1
        elif nxt == "{":
            end = self._close(pos + 2, "}", "${")
            self._nested(text[pos + 2 : end])
            self.pos = end + 1
        elif nxt == "'":
            end = pos + 2
            while end < len(text) and text[end] != "'":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise ShellSyntaxError("unterminated $'")
            self.pos = end + 1
        elif nxt == '"':
            self.pos += 1
            return
        elif nxt and (nxt.isalnum() or nxt == "_"):
            match = _NAME_RE.match(text, pos + 1)
            self.pos = match.end() if match and not nxt.isdigit() else pos + 2
        elif nxt and nxt in "@*#?$!-":
            self.pos = pos + 2
        else:
            self._add("$")
            self.pos += 1
            return
        self._add(UNKNOWN, quoted=True)

    def _backtick(self) -> None:
        end = _skip_backtick(self.text, self.pos)
        if end < 0:
            raise ShellSyntaxError("unterminated backtick")
        body = self.text[self.pos + 1 : end - 1]
        self.substitutions.append(re.sub(r"\\([\\`$])", r"\1", body))
        self._add(UNKNOWN, quoted=True)
        self.pos = end

    def _double_quoted(self) -> None:
        text = self.text
        self.pos += 1
        self._add("", quoted=True)
        while self.pos < len(text):
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return
            if char == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in '$`"\\\n':
                if text[self.pos + 1] != "\n":
                    self._add(text[self.pos + 1])
                self.pos += 2
            elif char == "$":
                self._dollar()
            elif char == "`":
                self._backtick()
            else:
                self._add(char)
                self.pos += 1
        raise ShellSyntaxError("unterminated double quote")

    def _operator(self) -> None:
        text, pos = self.text, self.pos
        fd = None
        if text[pos] in "<>" and self.in_word and not self.quoted and "".join(self.buf).isdigit():
            fd = "".join(self.buf)
            self.buf, self.in_word = [], False
        else:
            self._flush()
        op = next(op for op in _OPERATORS if text.startswith(op, pos))
        self.tokens.append(Token("op", op, fd=fd))
        self.pos += len(op)

    def run(self) -> list[Token]:
        """Tokenise the whole string."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            nxt = text[self.pos + 1] if self.pos + 1 < len(text) else ""
            if char in " \t":
                self._flush()
                self.pos += 1
            elif char == "\n":
                self._flush()
                self.tokens.append(Token("op", "\n"))
                self.pos += 1
            elif char == "#" and not self.in_word:
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif char == "\\":
                if nxt != "\n":
                    self._add(nxt or "\\", quoted=True)
                self.pos += 2
            elif char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated single quote")
                self._add(text[self.pos + 1 : end], quoted=True)
                self.pos = end + 1
            elif char == '"':
                self._double_quoted()
            elif char == "`":
                self._backtick()
            elif char == "$":
                self._dollar()
            elif char in "<>" and nxt == "(":
                end = self._close(self.pos + 2, ")", f"{char}(")
                self.substitutions.append(text[self.pos + 2 : end])
                self._add(UNKNOWN, quoted=True)
                self.pos = end + 1
            elif char in "|&;<>()":
                self._operator()
            else:
                self._add(char)
                self.pos += 1
        self._flush()
        return self.tokens
