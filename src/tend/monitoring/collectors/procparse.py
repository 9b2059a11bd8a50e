"""Parse the remote probe's output (see :mod:`.probe`) into a :class:`~.reading.Reading`.

Pure functions of text. Nothing here raises on bad input: a section that is missing, cut short
or holds garbage is recorded in ``Reading.errors`` under its name, and every other section is
still used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from tend.monitoring.collectors.probe import END, MARKER, SECTIONS
from tend.monitoring.collectors.reading import (
    CPU_FIELDS,
    CpuTimes,
    Filesystem,
    NetCounters,
    ProcessRow,
    Reading,
    keep_disk,
    keep_filesystem,
    keep_interface,
)

SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the device's sector size
_NUMBER = re.compile(r"\d+(\.\d+)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_OCTAL = re.compile(r"\\([0-7]{3})")
_MAX_BAD_PROCESS_LINES = 0.1  # share of /proc/PID/stat lines that may be odd (a comm with "\n")

T = TypeVar("T")


class ProcParseError(ValueError):
    """A section of the probe's output is not what the kernel or the tool prints."""


def number(text: str) -> float:
    """A non-negative decimal number (no sign, exponent, ``nan`` or ``inf``)."""
    if not _NUMBER.fullmatch(text):
        raise ProcParseError(f"not a number: {text[:40]!r}")
    return float(text)


def integer(text: str) -> int:
    """A non-negative integer."""
    if not text.isascii() or not text.isdigit():
        raise ProcParseError(f"not a count: {text[:40]!r}")
    return int(text)


def split_sections(text: str) -> tuple[dict[str, str], bool]:
    """Cut the output at its marker lines.

    Returns:
        The text of each section by name, and whether the end marker was seen (output whole).
    """
    known = {name for name, _ in SECTIONS}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(MARKER):
            name = line[len(MARKER) :].strip()
            if name == END:
                return {k: "\n".join(v) for k, v in sections.items()}, True
            current = sections.setdefault(name, []) if name in known else None
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in sections.items()}, False


def parse_stat(text: str) -> tuple[CpuTimes, dict[str, CpuTimes]]:
    """``cpu`` lines of /proc/stat: all cores, then each core by number."""
    total: CpuTimes | None = None
    cores: dict[str, CpuTimes] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields or not fields[0].startswith("cpu"):
            continue
        if len(fields) < 5:
            raise ProcParseError(f"short cpu line: {line[:60]!r}")
        values = [number(v) for v in fields[1 : 1 + len(CPU_FIELDS)]]
        times = CpuTimes(*values)
        if fields[0] == "cpu":
            total = times
        elif fields[0][3:].isdigit():
            cores[str(int(fields[0][3:]))] = times
    if total is None:
        raise ProcParseError("no total cpu line")
    return total, cores


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """/proc/loadavg: the three load averages."""
    fields = text.split()
    if len(fields) < 3:
        raise ProcParseError("fewer than three load averages")
    return number(fields[0]), number(fields[1]), number(fields[2])


def parse_keyed(text: str, unit: int = 1) -> dict[str, int]:
    """``key: value [kB]`` or ``key value`` lines (/proc/meminfo, /proc/vmstat)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 2:
            continue
        multiplier = 1024 if len(fields) > 2 and fields[2] == "kB" else unit
        values[fields[0]] = integer(fields[1]) * multiplier
    return values


def parse_uptime(text: str) -> float:
    """/proc/uptime: seconds since boot."""
    fields = text.split()
    if not fields:
        raise ProcParseError("empty")
    return number(fields[0])


def parse_boot_id(text: str) -> str:
    """/proc/sys/kernel/random/boot_id: a UUID, new at every boot."""
    boot_id = text.strip()
    if not _UUID.fullmatch(boot_id):
        raise ProcParseError(f"not a boot id: {boot_id[:40]!r}")
    return boot_id


def parse_diskstats(text: str) -> dict[str, tuple[int, int]]:
    """/proc/diskstats: bytes read and written per whole disk."""
    disks: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 10:
            raise ProcParseError(f"short line: {line[:60]!r}")
        name = fields[2]
        read, written = integer(fields[5]), integer(fields[9])
        if keep_disk(name):
            disks[name] = (read * SECTOR_BYTES, written * SECTOR_BYTES)
    return disks


def parse_netdev(text: str) -> dict[str, NetCounters]:
    """/proc/net/dev: bytes and errors (errors + drops, both ways) per interface."""
    interfaces: dict[str, NetCounters] = {}
    seen = 0
    for line in text.splitlines():
        if "|" in line or not line.strip():
            continue  # the two header lines
        name, colon, rest = line.partition(":")
        if not colon:
            raise ProcParseError(f"not an interface line: {line[:60]!r}")
        fields = [integer(v) for v in rest.split()]
        if len(fields) < 12:
            raise ProcParseError(f"short line: {line[:60]!r}")
        name = name.strip()
        seen += 1
        if keep_interface(name):
            errors = fields[2] + fields[3] + fields[10] + fields[11]
            interfaces[name] = NetCounters(fields[0], fields[8], errors)
    if not seen:
        raise ProcParseError("no interface lines (every host has lo)")
    return interfaces


def _unescape(path: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), path)


def parse_mounts(text: str) -> dict[str, str]:
    """/proc/mounts: filesystem type by mount point (the last mount on a point wins)."""
    types: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[1].startswith("/"):
            raise ProcParseError(f"not a mount line: {line[:60]!r}")
        types[_unescape(fields[1])] = fields[2]
    return types


def parse_df(text: str) -> dict[str, tuple[int, int, int]]:
    """``df -P -k`` or ``df -P -i``: (size, used, available) by mount point (kB or inodes).

    A ``-`` (inodes of a filesystem without them) reads as 0.
    """
    rows: dict[str, tuple[int, int, int]] = {}
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Filesystem"):
        raise ProcParseError("no df header (df failed or printed nothing)")
    for line in lines[1:]:
        fields = line.split(None, 5)
        if not fields:
            continue
        if len(fields) < 6 or not fields[5].startswith("/"):
            raise ProcParseError(f"unexpected line: {line[:60]!r}")
        size, used, avail = (0 if v == "-" else integer(v) for v in fields[1:4])
        rows[fields[5]] = (size, used, avail)
    return rows


def parse_conf(text: str) -> tuple[int, int]:
    """``getconf PAGESIZE; getconf CLK_TCK`` (4096 and 100 when missing)."""
    values = [int(v) for v in text.split() if v.isascii() and v.isdigit() and int(v) > 0]
    return (values[0] if values else 4096), (values[1] if len(values) > 1 else 100)


def parse_systemd(text: str) -> list[str] | None:
    """Failed units, or ``None`` when the host does not run systemd."""
    lines = text.splitlines()
    if not lines:
        return None
    if lines[0].strip() != "systemd":
        raise ProcParseError(f"unexpected first line: {lines[0][:60]!r}")
    units = []
    for line in lines[1:]:
        fields = line.replace("\u25cf", " ").replace("*", " ", 1).split()
        if fields:
            units.append(fields[0])
    return units


def parse_reboot(text: str) -> tuple[bool, list[str]]:
    """Whether a reboot is required, and the packages asking for it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return False, []
    if lines[0] != "required":
        raise ProcParseError(f"unexpected first line: {lines[0][:60]!r}")
    return True, sorted(set(lines[1:]))


def parse_users(text: str) -> dict[int, str]:
    """``ps -eo pid=,user:32=``: user name by pid (odd lines are skipped)."""
    users: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].isdigit():
            users[int(fields[0])] = fields[1]
    return users


def parse_process_line(line: str, page_size: int, ticks: int) -> ProcessRow:
    """One /proc/PID/stat line (the name may hold spaces and parentheses)."""
    head, close, tail = line.rpartition(") ")
    pid_text, paren, name = head.partition(" (")
    fields = tail.split()
    if not close or not paren or len(fields) < 22:
        raise ProcParseError(f"not a /proc/PID/stat line: {line[:60]!r}")
    return ProcessRow(
        pid=integer(pid_text),
        ppid=integer(fields[1]),
        name=name,
        state=fields[0][:1],
        cpu_seconds=(integer(fields[11]) + integer(fields[12])) / ticks,
        rss_bytes=max(0, int(fields[21])) * page_size,
        started=integer(fields[19]) / ticks,
    )


def parse_procs(
    text: str, page_size: int, ticks: int, users: dict[int, str] | None = None
) -> list[ProcessRow]:
    """/proc/PID/stat lines: the process table (a few odd lines are tolerated)."""
    rows: list[ProcessRow] = []
    bad = 0
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        try:
            row = parse_process_line(line, page_size, ticks)
        except ValueError:
            bad += 1
            continue
        user = (users or {}).get(row.pid)
        rows.append(row if user is None else _with_user(row, user))
    if not rows or bad > _MAX_BAD_PROCESS_LINES * len(lines):
        raise ProcParseError(f"{bad} of {len(lines)} lines are not /proc/PID/stat lines")
    return rows


def _with_user(row: ProcessRow, user: str) -> ProcessRow:
    return ProcessRow(
        row.pid, row.ppid, row.name, row.state, row.cpu_seconds, row.rss_bytes, row.started, user
    )


class _Parse:
    """Runs section parsers, turning any failure into an error entry of the reading."""

    def __init__(self, sections: dict[str, str], reading: Reading) -> None:
        self.sections = sections
        self.reading = reading

    def __call__(
        self, name: str, parser: Callable[[str], T], *, optional: bool = False
    ) -> T | None:
        text = self.sections.get(name)
        if text is None:
            if not optional:
                self.reading.errors[name] = "missing from the output"
            return None
        try:
            return parser(text)
        except (ValueError, IndexError, KeyError, ArithmeticError) as exc:
            self.reading.errors[name] = str(exc) or type(exc).__name__
            return None


def _memory(reading: Reading, meminfo: dict[str, int]) -> None:
    total = meminfo.get("MemTotal")
    if not total:
        reading.errors["meminfo"] = "no MemTotal"
        return
    available = meminfo.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = sum(meminfo.get(k, 0) for k in ("MemFree", "Buffers", "Cached"))
    reading.memory_total, reading.memory_available = total, min(available, total)
    if "SwapTotal" in meminfo and "SwapFree" in meminfo:
        reading.swap_total = meminfo["SwapTotal"]
        reading.swap_used = max(0, meminfo["SwapTotal"] - meminfo["SwapFree"])


def _filesystems(
    space: dict[str, tuple[int, int, int]],
    inodes: dict[str, tuple[int, int, int]] | None,
    types: dict[str, str] | None,
) -> list[Filesystem]:
    found = []
    for mount, (size, used, avail) in space.items():
        fstype = (types or {}).get(mount, "")
        if size == 0 or not keep_filesystem(fstype, mount):
            continue
        inode = (inodes or {}).get(mount)
        found.append(
            Filesystem(
                mount=mount,
                fstype=fstype,
                size_bytes=size * 1024,
                used_bytes=used * 1024,
                avail_bytes=avail * 1024,
                inodes_total=inode[0] if inode and inode[0] else None,
                inodes_used=inode[1] if inode and inode[0] else None,
            )
        )
    return found


def parse_probe(text: str, clock: float) -> Reading:
    """Parse the whole probe output; never raises.

    Args:
        text: What the probe printed.
        clock: The collector's monotonic clock when the output arrived (for rates).

    Returns:
        The reading, with an entry in ``errors`` for each section that could not be used.
    """
    sections, whole = split_sections(text)
    reading = Reading(clock=clock)
    if not whole:
        reading.errors["output"] = "cut short (no end marker)"
    parse = _Parse(sections, reading)
    stat = parse("stat", parse_stat)
    if stat is not None:
        reading.cpu, reading.cores = stat
        reading.cpu_count = len(stat[1]) or None
    reading.load = parse("loadavg", parse_loadavg)
    meminfo = parse("meminfo", parse_keyed)
    if meminfo is not None:
        _memory(reading, meminfo)
    page_size, ticks = parse("conf", parse_conf, optional=True) or (4096, 100)
    vmstat = parse("vmstat", lambda t: parse_keyed(t, page_size))
    if vmstat is not None:
        reading.swap_in_bytes = vmstat.get("pswpin")
        reading.swap_out_bytes = vmstat.get("pswpout")
    reading.uptime = parse("uptime", parse_uptime)
    reading.boot_id = parse("boot_id", parse_boot_id)
    reading.disks = parse("diskstats", parse_diskstats) or {}
    reading.interfaces = parse("netdev", parse_netdev) or {}
    space = parse("df", parse_df)
    if space is not None:
        types = parse("mounts", parse_mounts)
        reading.filesystems = _filesystems(space, parse("dfi", parse_df), types)
    reading.failed_units = parse("systemd", parse_systemd)
    reboot = parse("reboot", parse_reboot)
    if reboot is not None:
        reading.reboot_required, reading.reboot_required_by = reboot
    users = parse("users", parse_users, optional=True)
    reading.processes = parse("procs", lambda t: parse_procs(t, page_size, ticks, users))
    return reading
