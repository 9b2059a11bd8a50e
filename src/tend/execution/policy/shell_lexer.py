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
from tend.execution.policy.shell_nesting import SubstitutionTracker
from tend.execution.policy.shell_words import decode_ansi_c

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


def _skip_ansi_c(text: str, index: int) -> int:
    """Return the index of the quote closing the ``$'`` at ``index`` (-1 when missing)."""
    pos = index + 2
    while pos < len(text) and text[pos] != "'":
        pos += 2 if text[pos] == "\\" else 1
    return pos if pos < len(text) else -1


def find_close(text: str, start: int, closer: str) -> int:
    """Find the bracket closing a ``$(``, ``<(``, ``$((`` or ``${`` whose body starts at ``start``.

    Quotes, nested substitutions and backticks inside the body are skipped. Only brackets are
    counted: the lexer uses this for ``${...}`` and as the plain reading of ``$(...)`` that it
    compares with its grammar-aware reading.

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
        elif char == "'" or (char == "$" and nxt == "'"):
            pos = text.find("'", pos + 1) if char == "'" else _skip_ansi_c(text, pos)
            if pos < 0:
                return -1
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
    """Split a shell string into word and operator tokens, collecting substitutions.

    With ``stop_at`` the lexer reads the body of a ``$(...)`` starting there and stops at the
    ``)`` that ends it, which is then :attr:`end` (-1 when there is none).
    """

    def __init__(self, text: str, depth: int = 0, *, stop_at: int | None = None) -> None:
        if depth > MAX_NESTING:
            raise ShellSyntaxError("expansions are nested too deeply")
        self.text = text
        self.depth = depth
        self.pos = 0 if stop_at is None else stop_at
        self.tokens: list[Token] = []
        self.substitutions: list[str] = []
        self.remainders: list[str] = []
        self.issues: list[str] = []
        self.buf: list[str] = []
        self.in_word = False
        self.quoted = False
        self.tracker = SubstitutionTracker() if stop_at is not None else None
        self.end = -1
        self._saw_case = False

    @property
    def saw_case(self) -> bool:
        """Whether a ``case`` command was recognised in a substitution body."""
        return self._saw_case or (self.tracker is not None and self.tracker.saw_case)

    @saw_case.setter
    def saw_case(self, value: bool) -> None:
        self._saw_case = value

    def _add(self, text: str, *, quoted: bool = False) -> None:
        self.buf.append(text)
        self.in_word = True
        self.quoted = self.quoted or quoted

    def _flush(self) -> None:
        if self.in_word:
            token = Token("word", "".join(self.buf), self.quoted)
            self.tokens.append(token)
            if self.tracker is not None:
                self.tracker.word(token.value, quoted=token.quoted)
        self.buf, self.in_word, self.quoted = [], False, False

    def _emit(self, op: str, fd: str | None = None) -> None:
        if self.tracker is not None and self.tracker.operator(op):
            self.end = self.pos
            return
        self.tokens.append(Token("op", op, fd=fd))

    def _nested(self, body: str) -> None:
        """Collect the substitutions inside a ``${...}`` or ``$((...))`` body.

        A lexer only looking for the end of a substitution (``stop_at``) skips this: the body is
        lexed again when judged, and lexing it twice per level would be exponential.
        """
        if self.tracker is not None:
            return
        inner = Lexer(body, self.depth + 1)
        inner.run()
        self.substitutions.extend(inner.substitutions)
        self.remainders.extend(inner.remainders[: 1 - len(self.remainders)])
        self.issues.extend(inner.issues)

    def _close(self, start: int, closer: str, what: str) -> int:
        end = find_close(self.text, start, closer)
        if end < 0:
            raise ShellSyntaxError(f"unterminated {what}")
        return end

    def _substitution(self, start: int, what: str) -> int:
        """Find the ``)`` ending a ``$(``/``<(``/``>(`` whose body starts at ``start``.

        The grammar-aware reading decides; when it differs from a plain bracket count because
        of a ``case`` command, the text after the plain count's end is also kept as a remainder
        to judge as commands, in case the shell reads it that way.
        """
        try:
            inner = Lexer(self.text, self.depth + 1, stop_at=start)
            inner.run()
            end, saw_case = inner.end, inner.saw_case
        except ShellSyntaxError:
            end, saw_case = -1, False
        self.saw_case = self.saw_case or saw_case
        if end >= 0 and not saw_case:
            return end
        plain = find_close(self.text, start, ")")
        if end < 0 and plain < 0:
            raise ShellSyntaxError(f"unterminated {what}")
        if saw_case and plain >= 0 and plain != end and not self.remainders:
            self.remainders.append(self.text[plain + 1 :])
        return end if end >= 0 else plain

    def _dollar(self) -> None:
        text, pos = self.text, self.pos
        nxt = text[pos + 1] if pos + 1 < len(text) else ""
        if text.startswith("$((", pos):
            # Arithmetic if it ends with "))", else a command substitution of a subshell. The
            # body is judged as that subshell, which also judges every substitution inside the
            # arithmetic (lexing the arithmetic too would double the work at every level).
            end = self._substitution(pos + 2, "$((")
            self.substitutions.append(text[pos + 2 : end])
            self.issues.append("uses arithmetic expansion $((...))")
            self.pos = end + 1
        elif nxt == "(":
            end = self._substitution(pos + 2, "$(")
            self.substitutions.append(text[pos + 2 : end])
            self.pos = end + 1
        elif nxt == "{":
            end = self._close(pos + 2, "}", "${")
            body = text[pos + 2 : end]
            self._nested(body)
            if "[" in body and "'" in body:
                # bash runs $(...) in a subscript even inside single quotes: ${a['$(cmd)']}
                try:
                    self._nested(body.replace("'", ""))
                except ShellSyntaxError:
                    self.issues.append("has an array subscript that cannot be analysed")
            self.pos = end + 1
        elif nxt == "'":
            end = _skip_ansi_c(text, pos)
            if end < 0:
                raise ShellSyntaxError("unterminated $'")
            self._add(decode_ansi_c(text[pos + 2 : end]), quoted=True)
            self.pos = end + 1
            return
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
            elif char == "$" and text[self.pos + 1 : self.pos + 2] != "'":
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
        self._emit(op, fd)
        self.pos += len(op)

    def run(self) -> list[Token]:
        """Tokenise the whole string (or, with ``stop_at``, up to the end of the body)."""
        text = self.text
        while self.pos < len(text) and self.end < 0:
            char = text[self.pos]
            nxt = text[self.pos + 1] if self.pos + 1 < len(text) else ""
            if char in " \t":
                self._flush()
                self.pos += 1
            elif char == "\n":
                self._flush()
                self._emit("\n")
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
                end = self._substitution(self.pos + 2, f"{char}(")
                self.substitutions.append(text[self.pos + 2 : end])
                self._add(UNKNOWN, quoted=True)
                self.pos = end + 1
            elif char in "|&;<>()":
                self._operator()
            else:
                self._add(char)
                self.pos += 1
        if self.end < 0:
            self._flush()
        return self.tokens
