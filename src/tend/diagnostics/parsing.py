"""Pure parsers of command output several analyzers share; odd lines are skipped, not raised."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_HEADER = re.compile(r"^==> (.*) <==$")


def split_head(text: str) -> dict[str, str]:
    """Split ``head -v`` (or ``tail`` with several files) output into ``{path: content}``."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            current = files.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    return {path: "\n".join(lines).strip("\n") + "\n" for path, lines in files.items()}


def key_values(text: str, separator: str = ":") -> dict[str, str]:
    """Parse ``Key: value`` lines (``/proc/meminfo``, ``chronyc tracking``, ``systemctl show``)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(separator)
        if sep and key.strip():
            values[key.strip()] = value.strip()
    return values


def meminfo_kib(text: str) -> dict[str, int]:
    """Parse ``/proc/meminfo`` into KiB values."""
    values: dict[str, int] = {}
    for key, value in key_values(text).items():
        number = value.split()[0] if value.split() else ""
        if number.isdigit():
            values[key] = int(number)
    return values


def counters(text: str) -> dict[str, int]:
    """Parse ``name value`` lines (``/proc/vmstat``)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            values[parts[0]] = int(parts[1])
    return values


def cpu_count(proc_stat: str) -> int | None:
    """Count the ``cpuN`` lines of ``/proc/stat``."""
    count = sum(1 for line in proc_stat.splitlines() if re.match(r"cpu\d+\s", line))
    return count or None


def pressure(text: str) -> dict[str, dict[str, float]]:
    """Parse a ``/proc/pressure/*`` file: ``{"some": {"avg10": ..}, "full": {...}}``."""
    parsed: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        fields: dict[str, float] = {}
        for item in rest.split():
            name, _, value = item.partition("=")
            try:
                fields[name] = float(value)
            except ValueError:
                continue
        if kind in ("some", "full") and fields:
            parsed[kind] = fields
    return parsed


@dataclass(frozen=True, slots=True)
class Process:
    """One line of the ``ps`` probe."""

    pid: int
    ppid: int
    user: str
    stat: str
    cpu_percent: float
    mem_percent: float
    rss_kib: int
    age_seconds: int
    name: str

    @property
    def zombie(self) -> bool:
        """Whether the process has exited and waits for its parent to reap it."""
        return self.stat.startswith("Z")

    def describe(self) -> str:
        """One evidence line."""
        return (
            f"pid {self.pid} {self.name} (user {self.user}, state {self.stat}, "
            f"{self.cpu_percent:.1f} % CPU, {human_bytes(self.rss_kib * 1024)} RSS, "
            f"up {human_duration(self.age_seconds)})"
        )


def processes(text: str) -> list[Process]:
    """Parse the ``ps`` probe's output."""
    found: list[Process] = []
    for line in text.splitlines():
        parts = line.split(None, 8)
        if len(parts) < 9:
            continue
        try:
            found.append(
                Process(
                    pid=int(parts[0]),
                    ppid=int(parts[1]),
                    user=parts[2],
                    stat=parts[3],
                    cpu_percent=float(parts[4]),
                    mem_percent=float(parts[5]),
                    rss_kib=int(parts[6]),
                    age_seconds=int(parts[7]),
                    name=parts[8].strip(),
                )
            )
        except ValueError:
            continue
    return found


def vmstat_sample(text: str) -> dict[str, int] | None:
    """Return the last data line of ``vmstat N 2`` by column name (the one over the interval)."""
    header: list[str] | None = None
    sample: dict[str, int] | None = None
    for line in text.splitlines():
        parts = line.split()
        if "us" in parts and "id" in parts:
            header = parts
        elif (
            header is not None
            and len(parts) == len(header)
            and all(p.lstrip("-").isdigit() for p in parts)
        ):
            sample = {name: int(value) for name, value in zip(header, parts, strict=True)}
    return sample


def parse_time(text: str) -> datetime | None:
    """Parse ISO 8601 times as journalctl (``short-iso``) and dmesg (``iso``) print them."""
    value = text.strip().replace(",", ".")
    value = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def human_bytes(value: float) -> str:
    """Format a size: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop always returns


def human_duration(seconds: float) -> str:
    """Format a duration: ``45 s``, ``12 min``, ``5 h``, ``3 d``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"
