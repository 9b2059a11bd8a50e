"""GNU ``getopt_long`` parsing for commands whose options decide what runs.

Wrappers (``sudo``, ``env``, ``timeout``, ``nice`` ...) must find the command they run exactly
as the real program does, or ``timeout --sig=KILL 5 rm -rf /`` hides ``rm`` behind an option
the policy did not recognise. GNU ``getopt_long`` accepts:

* clustered short options (``-iu NAME``), a required value glued or separate (``-uNAME``,
  ``-u NAME``) and an optional value only glued (``-hHOST``);
* long options with ``--name=value`` or, for a required value, ``--name value``;
* any unambiguous prefix of a long option (``--sig`` is ``--signal``); an ambiguous prefix or
  an unknown option is an error, so nothing runs;
* ``--`` to end the options. With ``+`` in the option string (every wrapper) parsing stops at
  the first operand; without it (``su``) operands and options may be mixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

from tend.execution.policy.argv import words


@dataclass(frozen=True, slots=True)
class OptionTable:
    """The options a program understands.

    Attributes:
        required: Options that take a value (``-u``, ``--user``).
        optional: Options whose value is optional and must be glued (``-h``, ``--eof``).
        flags: Options without a value.
    """

    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()

    def longs(self) -> frozenset[str]:
        """Every long option name."""
        return frozenset(
            name for name in self.required | self.optional | self.flags if name.startswith("--")
        )


@cache
def option_table(values: str, flags: str, optional: str = "") -> OptionTable:
    """Build an :class:`OptionTable` from space-separated option names (cached).

    Args:
        values: Options that take a value.
        flags: Options without a value.
        optional: Options with an optional, glued value.

    Returns:
        The table.
    """
    return OptionTable(words(values), words(optional), words(flags))


def match_long(name: str, longs: Iterable[str]) -> str | None:
    """Resolve a long option as ``getopt_long`` does: exact name, else a unique prefix.

    Args:
        name: The option as given, without ``=value`` (``--sig``).
        longs: The long options the program knows.

    Returns:
        The full option name, or ``None`` when it is unknown or ambiguous.
    """
    names = set(longs)
    if name in names:
        return name
    if not name.startswith("--") or len(name) < 3:
        return None
    hits = [candidate for candidate in names if candidate.startswith(name)]
    return hits[0] if len(hits) == 1 else None


@dataclass(slots=True)
class Getopt:
    """The result of :func:`getopt_long`.

    Attributes:
        options: Options seen in order, by their full name, with their value (``None``
            without one).
        operands: Operands (with ``permute``, all of them; else those from ``index`` on).
        index: Index in the argv of the first operand (the wrapped command).
        unknown: The first option not understood (``None`` when all were); parsing stops
            there, as the real program exits with an error.
    """

    options: list[tuple[str, str | None]] = field(default_factory=list)
    operands: list[str] = field(default_factory=list)
    index: int = 0
    unknown: str | None = None

    @property
    def seen(self) -> dict[str, str | None]:
        """Options seen, each with its last value."""
        return dict(self.options)

    def has(self, *names: str) -> bool:
        """Whether any of the options ``names`` was given."""
        return any(option in names for option, _ in self.options)

    def values(self, *names: str) -> list[str]:
        """Values given to the options ``names``, in order."""
        return [value for option, value in self.options if option in names and value is not None]


def _short(arg: str, argv: Sequence[str], index: int, table: OptionTable, out: Getopt) -> int:
    """Parse one cluster of short options; return the next index (``-1`` on error)."""
    for pos in range(1, len(arg)):
        option = "-" + arg[pos]
        rest = arg[pos + 1 :]
        if option in table.required:
            if rest:
                out.options.append((option, rest))
            else:
                out.options.append((option, argv[index] if index < len(argv) else ""))
                index += 1
            return index
        if option in table.optional:
            out.options.append((option, rest or None))
            return index
        if option not in table.flags:
            out.unknown = arg
            return -1
        out.options.append((option, None))
    return index


def _long(arg: str, argv: Sequence[str], index: int, table: OptionTable, out: Getopt) -> int:
    """Parse one long option; return the next index (``-1`` on error)."""
    given, eq, value = arg.partition("=")
    name = match_long(given, table.longs())
    if name is None:
        out.unknown = arg
        return -1
    if name in table.required:
        if not eq:
            value = argv[index] if index < len(argv) else ""
            index += 1
        out.options.append((name, value))
    elif name in table.optional:
        out.options.append((name, value if eq else None))
    elif eq:
        out.unknown = arg
        return -1
    else:
        out.options.append((name, None))
    return index


def getopt_long(
    argv: Sequence[str], table: OptionTable, *, start: int = 1, permute: bool = False
) -> Getopt:
    """Parse options from ``argv[start:]`` as GNU ``getopt_long`` does.

    Args:
        argv: The full argv (``argv[0]`` is the program).
        table: The options the program understands.
        start: Index of the first argument to parse.
        permute: Mix options and operands (no ``+`` in the option string).

    Returns:
        The options, the operands and where the operands start.
    """
    out = Getopt()
    index = start
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            if not permute:
                break
            out.operands.append(arg)
            index += 1
            continue
        index += 1
        parse = _long if arg.startswith("--") else _short
        index = parse(arg, argv, index, table, out)
        if index < 0:
            out.index = len(argv)
            return out
    out.index = min(index, len(argv))
    out.operands.extend(argv[out.index :])
    return out
