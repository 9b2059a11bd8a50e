"""Word-level expansions whose result is known before the shell runs.

``$'...'`` (ANSI-C quoting) is decoded as bash does, and brace expansion (``{rm,-rf,/}``,
``{a..c}``) is performed so that a command assembled from braces is judged as what it becomes.
"""

from __future__ import annotations

import re

MAX_BRACE_WORDS = 64
"""Most words a brace expansion may produce before it is given up (the raw word is judged)."""

_SIMPLE_ESCAPES = {
    "a": 0x07,
    "b": 0x08,
    "e": 0x1B,
    "E": 0x1B,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
    "\\": 0x5C,
    "'": 0x27,
    '"': 0x22,
    "?": 0x3F,
}
_HEX = "0123456789abcdefABCDEF"
_OCTAL = "01234567"
_SEQUENCE_RE = re.compile(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?|([A-Za-z])\.\.([A-Za-z])")


def _digits(text: str, start: int, allowed: str, limit: int) -> str:
    end = start
    while end < len(text) and end - start < limit and text[end] in allowed:
        end += 1
    return text[start:end]


def decode_ansi_c(body: str) -> str:
    r"""Decode the body of ``$'...'`` (without the quotes) as bash does.

    ``\n``, ``\t``, ``\xHH``, ``\NNN`` (octal), ``\uHHHH``, ``\cX`` ... are replaced; bash ends the
    string at a NUL byte, so the text after ``\0`` is dropped. Invalid UTF-8 becomes U+FFFD.

    Args:
        body: The text between ``$'`` and the closing ``'``.

    Returns:
        The decoded text (never holding a NUL character).
    """
    out = bytearray()
    pos = 0
    while pos < len(body):
        char = body[pos]
        if char != "\\" or pos + 1 >= len(body):
            out += char.encode("utf-8", "replace")
            pos += 1
            continue
        code = body[pos + 1]
        pos += 2
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
        elif code in _OCTAL:
            digits = code + _digits(body, pos, _OCTAL, 2)
            pos += len(digits) - 1
            out.append(int(digits, 8) & 0xFF)
        elif code in "xuU":
            digits = _digits(body, pos, _HEX, {"x": 2, "u": 4, "U": 8}[code])
            if not digits:
                out += f"\\{code}".encode()
                continue
            pos += len(digits)
            value = int(digits, 16)
            if code == "x":
                out.append(value)
            elif value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
                out += chr(value).encode("utf-8")
            else:
                out += "\ufffd".encode()
        elif code == "c" and pos < len(body):
            control = body[pos]
            pos += 1
            out.append(0x7F if control == "?" else ord(control.upper()) & 0x1F)
        else:
            out += f"\\{code}".encode("utf-8", "replace")
    return bytes(out).split(b"\0", 1)[0].decode("utf-8", "replace")


def _brace_end(word: str, start: int) -> tuple[int, list[int]]:
    """Index of the ``}`` matching the ``{`` at ``start`` and the top-level comma positions."""
    depth, commas = 0, list[int]()
    for pos in range(start, len(word)):
        char = word[pos]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return pos, commas
        elif char == "," and depth == 1:
            commas.append(pos)
    return -1, commas


def _sequence(body: str) -> list[str] | None:
    match = _SEQUENCE_RE.fullmatch(body)
    if match is None:
        return None
    if match.group(4) is not None:
        first, last = ord(match.group(4)), ord(match.group(5))
        step = 1 if last >= first else -1
        return [chr(code) for code in range(first, last + step, step)][: MAX_BRACE_WORDS + 1]
    first, last = int(match.group(1)), int(match.group(2))
    step = abs(int(match.group(3) or 1)) or 1
    step = step if last >= first else -step
    return [str(value) for value in range(first, last + step, step)[: MAX_BRACE_WORDS + 1]]


class _TooMany(Exception):
    """A brace expansion produced more than :data:`MAX_BRACE_WORDS` words."""


def _expand(word: str) -> list[str]:
    start = word.find("{")
    while start >= 0:
        end, commas = _brace_end(word, start)
        if end < 0:
            return [word]
        if commas:
            bounds = [start, *commas, end]
            parts = [word[bounds[i] + 1 : bounds[i + 1]] for i in range(len(bounds) - 1)]
        else:
            parts = _sequence(word[start + 1 : end]) or []
        if parts:
            results: list[str] = []
            for part in parts:
                results += _expand(word[:start] + part + word[end + 1 :])
                if len(results) > MAX_BRACE_WORDS:
                    raise _TooMany
            return results
        start = word.find("{", start + 1)
    return [word]


def expand_braces(word: str) -> list[str]:
    """Expand ``{a,b}`` and ``{1..3}`` in ``word`` as bash does (quoting is not known here).

    Args:
        word: A word after quote removal.

    Returns:
        The words it expands to (``[word]`` when there is nothing to expand or too much).
    """
    if "{" not in word:
        return [word]
    try:
        return _expand(word)
    except _TooMany:
        return [word]
