"""Turn two consecutive readings of a host into a snapshot: percentages, rates, top processes.

Counters that went backwards (a reboot, a wrapped or reset counter, an interface re-created)
give no rate for that round rather than a huge or negative one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tend.monitoring.collectors.reading import CpuTimes, ProcessRow, Reading
from tend.monitoring.registry import Sample, Snapshot

TOP = 5


def _percent(part: float, whole: float) -> float:
    return max(0.0, min(100.0, 100.0 * part / whole)) if whole > 0 else 0.0


def cpu_percentages(before: CpuTimes, after: CpuTimes) -> tuple[float, float, float] | None:
    """Busy, iowait and steal time as percentages of the time between two readings.

    Busy is everything but idle and iowait (as ``top`` and psutil count it).

    Returns:
        ``(busy, iowait, steal)``, or ``None`` when no time passed or a counter went backwards.
    """
    total = after.total - before.total
    deltas = [getattr(after, n) - getattr(before, n) for n in ("idle", "iowait", "steal")]
    if total <= 0 or min(deltas) < 0:
        return None
    idle, iowait, steal = deltas
    return _percent(total - idle - iowait, total), _percent(iowait, total), _percent(steal, total)


def rate(after: float | None, before: float | None, seconds: float) -> float | None:
    """Per-second increase of a cumulative counter; ``None`` when unknown or reset."""
    if after is None or before is None or seconds <= 0 or after < before:
        return None
    return (after - before) / seconds


def process_cpu_percent(
    row: ProcessRow, previous: dict[tuple[int, float], float], seconds: float, uptime: float | None
) -> float:
    """CPU use of one process over the interval (100 = one core); its lifetime average if new."""
    before = previous.get((row.pid, row.started))
    if before is not None and seconds > 0 and row.cpu_seconds >= before:
        return 100.0 * (row.cpu_seconds - before) / seconds
    if uptime is not None and uptime - row.started > 0:
        return 100.0 * row.cpu_seconds / (uptime - row.started)
    return 0.0


def top_processes(
    current: Reading,
    previous: Reading | None,
    seconds: float,
    user_of: Callable[[ProcessRow], str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The top processes by CPU and by resident memory, as ``info`` entries.

    Args:
        current: This reading (with processes).
        previous: The last reading of the host, if any.
        seconds: Time between the two readings.
        user_of: Finds a process's user when the reading did not carry it (called for the few
            processes shown only).

    Returns:
        ``(top_cpu, top_memory)``, each at most five ``{pid, name, user, cpu_percent,
        memory_bytes}`` mappings.
    """
    rows = current.processes or []
    earlier = {(p.pid, p.started): p.cpu_seconds for p in (previous and previous.processes) or []}
    cpu = {row.pid: process_cpu_percent(row, earlier, seconds, current.uptime) for row in rows}

    def entry(row: ProcessRow) -> dict[str, Any]:
        user = row.user if row.user != "?" or user_of is None else user_of(row)
        return {
            "pid": row.pid,
            "name": row.name,
            "user": user,
            "cpu_percent": round(cpu[row.pid], 1),
            "memory_bytes": row.rss_bytes,
        }

    live = [row for row in rows if row.state != "Z"]
    by_cpu = sorted(live, key=lambda r: (-cpu[r.pid], r.pid))[:TOP]
    by_memory = sorted(live, key=lambda r: (-r.rss_bytes, r.pid))[:TOP]
    return [entry(r) for r in by_cpu], [entry(r) for r in by_memory]


def _rates(
    samples: list[Sample],
    metric: str,
    *,
    label: str,
    now: dict[str, float],
    before: dict[str, float],
    seconds: float,
) -> None:
    for key, value in sorted(now.items()):
        per_second = rate(value, before.get(key), seconds)
        if per_second is not None:
            samples.append(Sample.of(metric, per_second, **{label: key}))


def _cpu_samples(samples: list[Sample], current: Reading, previous: Reading | None) -> None:
    if previous is not None and current.cpu is not None and previous.cpu is not None:
        shares = cpu_percentages(previous.cpu, current.cpu)
        if shares is not None:
            samples.append(Sample.of("cpu_usage_percent", shares[0]))
            samples.append(Sample.of("cpu_iowait_percent", shares[1]))
            samples.append(Sample.of("cpu_steal_percent", shares[2]))
        for core, times in sorted(current.cores.items(), key=lambda kv: int(kv[0])):
            earlier = previous.cores.get(core)
            core_shares = cpu_percentages(earlier, times) if earlier is not None else None
            if core_shares is not None:
                samples.append(Sample.of("cpu_core_usage_percent", core_shares[0], cpu=core))
    if current.cpu_count is not None:
        samples.append(Sample.of("cpu_count", current.cpu_count))
    if current.load is not None:
        for name, value in zip(("load1", "load5", "load15"), current.load, strict=True):
            samples.append(Sample.of(name, value))


def _memory_samples(samples: list[Sample], current: Reading) -> None:
    total, available = current.memory_total, current.memory_available
    if total is not None and available is not None:
        samples.append(Sample.of("memory_total_bytes", total))
        samples.append(Sample.of("memory_available_bytes", available))
        samples.append(Sample.of("memory_available_percent", _percent(available, total)))
    if current.swap_total is not None and current.swap_used is not None:
        samples.append(Sample.of("swap_total_bytes", current.swap_total))
        samples.append(Sample.of("swap_used_bytes", current.swap_used))
        samples.append(
            Sample.of("swap_used_percent", _percent(current.swap_used, current.swap_total))
        )


def _filesystem_samples(samples: list[Sample], current: Reading) -> None:
    for fs in sorted(current.filesystems, key=lambda f: f.mount):
        samples.append(Sample.of("filesystem_size_bytes", fs.size_bytes, mount=fs.mount))
        samples.append(Sample.of("filesystem_avail_bytes", fs.avail_bytes, mount=fs.mount))
        # As df counts it: space reserved for root is neither used nor available to users.
        used = _percent(fs.used_bytes, fs.used_bytes + fs.avail_bytes)
        samples.append(Sample.of("filesystem_used_percent", used, mount=fs.mount))
        if fs.inodes_total and fs.inodes_used is not None:
            inodes = _percent(fs.inodes_used, fs.inodes_total)
            samples.append(Sample.of("filesystem_inodes_used_percent", inodes, mount=fs.mount))


def _rate_samples(
    samples: list[Sample], current: Reading, previous: Reading, seconds: float
) -> None:
    for metric, now, before in (
        ("swap_in_bytes_per_second", current.swap_in_bytes, previous.swap_in_bytes),
        ("swap_out_bytes_per_second", current.swap_out_bytes, previous.swap_out_bytes),
    ):
        per_second = rate(now, before, seconds)
        if per_second is not None:
            samples.append(Sample.of(metric, per_second))
    for index, metric in enumerate(("disk_read_bytes_per_second", "disk_write_bytes_per_second")):
        now_disk = {name: float(pair[index]) for name, pair in current.disks.items()}
        before_disk = {name: float(pair[index]) for name, pair in previous.disks.items()}
        _rates(samples, metric, label="device", now=now_disk, before=before_disk, seconds=seconds)
    for attribute, metric in (
        ("rx_bytes", "network_receive_bytes_per_second"),
        ("tx_bytes", "network_transmit_bytes_per_second"),
        ("errors", "network_errors_per_second"),
    ):
        now_net = {n: float(getattr(c, attribute)) for n, c in current.interfaces.items()}
        before_net = {n: float(getattr(c, attribute)) for n, c in previous.interfaces.items()}
        _rates(samples, metric, label="interface", now=now_net, before=before_net, seconds=seconds)


def build_snapshot(
    host: str,
    at: datetime,
    current: Reading,
    previous: Reading | None,
    user_of: Callable[[ProcessRow], str] | None = None,
) -> Snapshot:
    """Compute a host's snapshot from this reading and the one before (rates need both).

    Args:
        host: The host's name.
        at: When the reading was taken (UTC).
        current: This reading.
        previous: The host's previous reading, or ``None`` on the first collection.
        user_of: Finds the user of a process shown in the top lists (see :func:`top_processes`).

    Returns:
        The snapshot; ``error`` lists the sections that could not be read. ``host_up`` is left
        to the collector.
    """
    if previous is not None and (
        (previous.boot_id is not None and previous.boot_id != current.boot_id)
        or current.clock <= previous.clock
    ):
        previous = None  # rebooted (every counter started again) or no time passed
    seconds = current.clock - previous.clock if previous is not None else 0.0
    samples: list[Sample] = []
    _cpu_samples(samples, current, previous)
    _memory_samples(samples, current)
    _filesystem_samples(samples, current)
    if previous is not None:
        _rate_samples(samples, current, previous, seconds)
    info: dict[str, Any] = {}
    rows = current.processes
    total, zombies = current.process_count, current.zombie_count
    if rows is not None:
        total = len(rows) if total is None else total
        zombies = sum(1 for row in rows if row.state == "Z") if zombies is None else zombies
    if total is not None:
        samples.append(Sample.of("processes_total", total))
    if zombies is not None:
        samples.append(Sample.of("processes_zombie", zombies))
    if rows is not None:
        info["top_cpu"], info["top_memory"] = top_processes(current, previous, seconds, user_of)
    if current.uptime is not None:
        samples.append(Sample.of("uptime_seconds", current.uptime))
    if current.failed_units is not None:
        samples.append(Sample.of("systemd_failed_units", len(current.failed_units)))
        info["failed_units"] = list(current.failed_units)
    if current.reboot_required is not None:
        samples.append(Sample.of("reboot_required", 1.0 if current.reboot_required else 0.0))
        info["reboot_required_by"] = list(current.reboot_required_by)
    error = "; ".join(f"{section}: {why}" for section, why in sorted(current.errors.items()))
    return Snapshot(host=host, at=at, samples=samples, info=info, error=error or None)
