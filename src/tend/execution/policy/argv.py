"""Argv validation, command-name normalisation and small text helpers shared by the policy."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from tend.execution.policy.model import InvalidArgvError

MAX_ARGV_BYTES = 64 * 1024
"""Largest accepted argv, counted as the sum of the UTF-8 lengths of its arguments."""

UNKNOWN = "\x00"
"""Stands for text that only exists at run time (``$VAR``, ``$(...)``, ``{}`` of find ...).

NUL can never appear in a valid argv, so the marker cannot be confused with real text.
"""

_GLOB_CHARS = frozenset("*?[{")
_FORBIDDEN_CHARS = {"\x00": "a NUL byte", "\n": "a newline", "\r": "a carriage return"}


def split_words(text: str) -> tuple[str, ...]:
    """Split a space-separated list of names, keeping its order (keeps long tables compact)."""
    return tuple(text.split())


def words(text: str) -> frozenset[str]:
    """Split a space-separated list of names into a set (keeps long tables compact)."""
    return frozenset(text.split())


def validate_argv(argv: Sequence[str]) -> list[str]:
    r"""Check that ``argv`` is a well-formed argument vector and return it as a list.

    Args:
        argv: The argument vector; ``argv[0]`` is the program.

    Returns:
        A new list holding the same strings.

    Raises:
        InvalidArgvError: ``argv`` is a bare string, is empty, has an empty ``argv[0]``, holds a
            non-string, an argument with NUL, ``\\n`` or ``\\r`` or text that is not valid
            Unicode, or is larger than 64 KiB in total.
    """
    if isinstance(argv, str | bytes):
        raise InvalidArgvError("argv must be a list of strings, not a single string")
    args = list(argv)
    if not args:
        raise InvalidArgvError("argv is empty: there is no command to run")
    total = 0
    for index, arg in enumerate(args):
        if not isinstance(arg, str):
            raise InvalidArgvError(f"argv[{index}] is {type(arg).__name__}, not a string")
        for char, name in _FORBIDDEN_CHARS.items():
            if char in arg:
                raise InvalidArgvError(f"argv[{index}] holds {name}, which is not allowed")
        try:
            total += len(arg.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidArgvError(
                f"argv[{index}] is not valid Unicode text (it holds a lone surrogate)"
            ) from None
        if total > MAX_ARGV_BYTES:
            raise InvalidArgvError(
                f"argv is larger than {MAX_ARGV_BYTES} bytes (limit passed at argv[{index}])"
            )
    if not args[0]:
        raise InvalidArgvError("argv[0] is empty: there is no command to run")
    return args


def command_name(word: str) -> str:
    """Return the basename of a program path after normalising it.

    ``/usr/bin/../bin/rm``, ``./rm`` and ``//bin///rm`` all give ``rm``.

    Args:
        word: ``argv[0]`` as given.

    Returns:
        The program's basename, or the normalised word when it has no basename.
    """
    if "/" not in word:
        return word
    normal = posixpath.normpath(re.sub(r"/+", "/", word))
    return posixpath.basename(normal) or normal


_ALIASES = {
    "nodejs": "node",
    "luajit": "lua",
    "gawk": "awk",
    "mawk": "awk",
    "nawk": "awk",
    "busybox.static": "busybox",
    "mke2fs": "mkfs",
    "mkdosfs": "mkfs",
    "mkntfs": "mkfs",
    "mkexfatfs": "mkfs",
    "e2fsck": "fsck",
    "ip6tables": "iptables",
    "iptables-legacy": "iptables",
    "iptables-nft": "iptables",
    "ip6tables-legacy": "iptables",
    "ip6tables-nft": "iptables",
    "ebtables": "iptables",
    "arptables": "iptables",
    "iptables-save": "iptables-save",
    "ip6tables-save": "iptables-save",
    "iptables-restore": "iptables-restore",
    "ip6tables-restore": "iptables-restore",
    "podman": "docker",
    "nerdctl": "docker",
    "yum": "dnf",
    "microdnf": "dnf",
    "pipx": "pip",
    "vim.tiny": "vim",
    "vim.basic": "vim",
    "sudoedit": "sudoedit",
}

_PREFIX_FAMILIES = (("mkfs.", "mkfs"), ("fsck.", "fsck"), ("mount.", "mount"))

_VERSIONED = re.compile(
    r"(?P<stem>python|pypy|pip|perl|ruby|node|php|lua|tclsh|wish|bash|zsh|ksh)"
    r"(?:\d+(?:\.\d+)*[a-z]?)?"
)


def command_family(name: str) -> str:
    """Map a command basename to the family the knowledge base is keyed by.

    Versioned and suffixed names share a family: ``python3.11`` is ``python``, ``pip3`` is
    ``pip``, ``mkfs.ext4`` is ``mkfs`` and ``ip6tables`` is ``iptables``. Other names are
    returned unchanged.

    Args:
        name: A command basename as returned by :func:`command_name`.

    Returns:
        The family name.
    """
    alias = _ALIASES.get(name)
    if alias is not None:
        return alias
    for prefix, family in _PREFIX_FAMILIES:
        if name.startswith(prefix):
            return family
    match = _VERSIONED.fullmatch(name)
    if match is not None:
        return match.group("stem")
    return name


def is_pattern(path: str, *, globbing: bool) -> bool:
    """Whether ``path`` stands for several paths (run-time text, or a glob in shell context)."""
    return UNKNOWN in path or (globbing and any(char in _GLOB_CHARS for char in path))


def to_fnmatch(path: str, *, globbing: bool) -> str:
    """Turn a path into an :func:`fnmatch.fnmatchcase` pattern (run-time text becomes ``*``)."""
    text = re.sub(r"\{[^{}]*\}", "*", path) if globbing else re.sub(r"([*?\[])", r"[\1]", path)
    return text.replace(UNKNOWN, "*")
