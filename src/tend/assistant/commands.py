"""The argv the assistant's convenience tools run, and the parsing of what comes back.

Each builder returns a plain argv list; it is judged by the policy and audited like any other
command. Arguments coming from the model are validated here (no option injection: a value that
could be read as an option is refused) before any argv is built.
"""

from __future__ import annotations

import re
from typing import Literal

from tend.assistant.results import DiskEntry, FilesystemUsage

Priority = Literal["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
ProcessSort = Literal["cpu", "memory"]

UNIT_PATTERN = r"^[A-Za-z0-9@_.:\\][A-Za-z0-9@_.:\\-]{0,255}$"
SINCE_PATTERN = r"^(-?[0-9]{1,6} ?(s|sec|m|min|h|hour|hours|d|day|days|w|week|weeks)( ago)?|today|yesterday|[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}(:[0-9]{2})?)?)$"  # noqa: E501
PATH_PATTERN = r"^/[^\x00\n\r]{0,4095}$"

PS_COLUMNS = "pid,ppid,user,stat,pcpu,pmem,rss,etime,args"

_UNIT = re.compile(UNIT_PATTERN)
_SINCE = re.compile(SINCE_PATTERN)
_PATH = re.compile(PATH_PATTERN)


class BadArgument(ValueError):
    """An argument the model gave cannot be turned into a safe argv."""


def journal_argv(
    *,
    unit: str | None = None,
    priority: Priority | None = None,
    since: str | None = None,
    lines: int = 200,
) -> list[str]:
    """``journalctl`` reading the newest ``lines`` entries, optionally of one unit and priority.

    Args:
        unit: A systemd unit.
        priority: The least severe priority shown.
        since: Where to start (``-1h``, ``today``, ``2026-11-26 10:00``).
        lines: Most entries.

    Returns:
        The argv.

    Raises:
        BadArgument: For a unit name or start time that is not one.
    """
    argv = ["journalctl", "--no-pager", "--output", "short-iso", "--lines", str(lines)]
    if unit is not None:
        argv += ["--unit", checked_unit(unit)]
    if priority is not None:
        argv += ["--priority", priority]
    if since is not None:
        if not _SINCE.match(since.strip()):
            raise BadArgument(
                f"since must look like -1h, 30 min ago, today or 2026-11-26 10:00, got {since!r}"
            )
        argv.append(f"--since={since.strip().removesuffix(' ago')}")
    return argv


def checked_unit(unit: str) -> str:
    """Return ``unit`` when it is a systemd unit name.

    Raises:
        BadArgument: For anything else (an option such as ``--help`` included).
    """
    if not _UNIT.match(unit):
        raise BadArgument(f"not a systemd unit name: {unit!r}")
    return unit


def checked_path(path: str) -> str:
    """Return ``path`` when it is absolute and holds no control characters.

    Raises:
        BadArgument: For anything else.
    """
    if not _PATH.match(path):
        raise BadArgument(f"path must be absolute (start with /), got {path!r}")
    return path


def tail_argv(path: str, max_bytes: int) -> list[str]:
    """``tail`` of the last ``max_bytes`` bytes of a file.

    Raises:
        BadArgument: For a path that is not absolute.
    """
    return ["tail", "-c", str(max_bytes), "--", checked_path(path)]


def ps_argv(sort: ProcessSort) -> list[str]:
    """``ps`` listing every process, busiest first by CPU or memory."""
    key = "-pcpu" if sort == "cpu" else "-rss"
    return ["ps", "-eo", PS_COLUMNS, f"--sort={key}"]


def status_argv(unit: str) -> list[str]:
    """``systemctl status`` of one unit with its last log lines.

    Raises:
        BadArgument: For a unit name that is not one.
    """
    return [
        "systemctl",
        "status",
        "--no-pager",
        "--full",
        "--lines",
        "20",
        "--",
        checked_unit(unit),
    ]


def df_argv(path: str) -> list[str]:
    """``df`` of the filesystem holding ``path``, in KiB, POSIX format."""
    return ["df", "-P", "-k", "--", checked_path(path)]


def du_argv(path: str) -> list[str]:
    """``du`` of ``path`` and its direct subdirectories on the same filesystem, in KiB."""
    return ["du", "-x", "-k", "-d", "1", "--", checked_path(path)]


def first_lines(text: str, count: int) -> str:
    """Return the first ``count`` lines of ``text``."""
    return "\n".join(text.splitlines()[:count])


def parse_df(text: str) -> FilesystemUsage | None:
    """Parse ``df -P -k`` output (header + one line), or ``None`` when it is not that."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    if len(fields) < 6:
        return None
    try:
        size, used, avail = (int(value) * 1024 for value in fields[1:4])
        percent = float(fields[4].rstrip("%"))
    except ValueError:
        return None
    return FilesystemUsage(
        filesystem=fields[0],
        mount=" ".join(fields[5:]),
        size_bytes=size,
        used_bytes=used,
        avail_bytes=avail,
        used_percent=percent,
    )


def parse_du(text: str, limit: int = 20) -> list[DiskEntry]:
    """Parse ``du -k`` lines (``KiB<TAB>path``), largest first."""
    entries = []
    for line in text.splitlines():
        size, sep, path = line.partition("\t")
        if not sep or not size.strip().isdigit():
            continue
        entries.append(DiskEntry(path=path, bytes=int(size) * 1024))
    entries.sort(key=lambda e: (-e.bytes, e.path))
    return entries[:limit]
