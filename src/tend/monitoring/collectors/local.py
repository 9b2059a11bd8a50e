"""Collect the machine tend runs on: psutil for system counters, /proc for the process table.

Every read runs in a worker thread (``asyncio.to_thread``), never on the event loop. The process
table is read from ``/proc/PID/stat`` with the same parser the remote collector uses (one read
per process, several times cheaper than psutil's per-process calls); where there is no /proc,
psutil lists the processes instead. ``systemctl --failed`` is spawned at most every
:data:`SYSTEMD_EVERY` seconds, with a timeout and no shell, and only where systemd runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from tend.execution.targets import HostSnapshot
from tend.monitoring.collectors.compute import build_snapshot
from tend.monitoring.collectors.procparse import parse_process_line, parse_systemd
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
from tend.monitoring.registry import Sample, Snapshot

BASELINE_SECONDS = 0.25
"""On the first collection, counters are read twice this far apart so rates exist at once."""

SYSTEMD_EVERY = 15.0
"""Least time between two ``systemctl --failed`` runs (failed units change rarely)."""

SYSTEMCTL_TIMEOUT = 5.0
REBOOT_REQUIRED = Path("/var/run/reboot-required")
_PROC = Path("/proc")
_STATUS_LETTERS = {
    psutil.STATUS_RUNNING: "R",
    psutil.STATUS_SLEEPING: "S",
    psutil.STATUS_DISK_SLEEP: "D",
    psutil.STATUS_ZOMBIE: "Z",
    psutil.STATUS_STOPPED: "T",
    psutil.STATUS_IDLE: "I",
}


def _cpu(times: object) -> CpuTimes:
    return CpuTimes(*(float(getattr(times, name, 0.0)) for name in CPU_FIELDS))


def _processes_from_proc(page_size: int, ticks: int) -> list[ProcessRow]:
    rows = []
    for entry in os.listdir(_PROC):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                line = stat.read().decode("utf-8", errors="replace")
            rows.append(parse_process_line(line.rstrip("\n"), page_size, ticks))
        except (OSError, ValueError):
            continue  # the process ended meanwhile
    return rows


def _processes_from_psutil(boot: float) -> list[ProcessRow]:
    rows = []
    attrs = ["pid", "ppid", "name", "status", "cpu_times", "memory_info", "create_time"]
    for process in psutil.process_iter(attrs):
        info = process.info
        times = info["cpu_times"]
        rows.append(
            ProcessRow(
                pid=info["pid"],
                ppid=info["ppid"] or 0,
                name=info["name"] or "?",
                state=_STATUS_LETTERS.get(info["status"], "S"),
                cpu_seconds=(times.user + times.system) if times else 0.0,
                rss_bytes=info["memory_info"].rss if info["memory_info"] else 0,
                started=max(0.0, (info["create_time"] or boot) - boot),
            )
        )
    return rows


def user_of(row: ProcessRow) -> str:
    """The user running a local process (``?`` when it ended or cannot be read)."""
    try:
        return psutil.Process(row.pid).username()
    except (psutil.Error, KeyError):
        return "?"


class _Users:
    """Users of the processes shown, remembered per process (the top lists change little)."""

    LIMIT = 1000

    def __init__(self) -> None:
        self._known: dict[tuple[int, float], str] = {}

    def __call__(self, row: ProcessRow) -> str:
        key = (row.pid, row.started)
        if key not in self._known:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[key] = user_of(row)
        return self._known[key]


class LocalCollector:
    """Collects the machine tend runs on (implements ``Collector``)."""

    def __init__(self) -> None:
        """Start with no previous reading (the first collection takes a short baseline)."""
        self._previous: dict[str, Reading] = {}
        self._lock = threading.Lock()
        self._systemd_at = -SYSTEMD_EVERY
        self._failed_units: list[str] | None = None
        self._page_size = os.sysconf("SC_PAGE_SIZE")
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._has_proc = (_PROC / "self" / "stat").exists()
        self._users = _Users()

    async def collect(self, host: HostSnapshot) -> Snapshot:
        """Collect now; a failure is reported in ``Snapshot.error``, never raised."""
        at = datetime.now(UTC)
        if self._lock.locked():
            # A read still hangs (a dead network mount): never pile up threads behind it.
            return Snapshot(host=host.name, at=at, error="the previous collection is still running")
        try:
            snapshot = await asyncio.to_thread(self._collect, host.name, at)
        except Exception as exc:  # psutil or the kernel surprised us: report, do not raise
            return Snapshot(
                host=host.name,
                at=at,
                samples=[Sample.of("host_up", 0)],
                error=f"local collection failed: {type(exc).__name__}: {exc}",
            )
        snapshot.samples.append(Sample.of("host_up", 1))
        return snapshot

    def _collect(self, name: str, at: datetime) -> Snapshot:
        with self._lock:
            previous = self._previous.get(name)
            if previous is None:
                previous = self._counters()
                time.sleep(BASELINE_SECONDS)
            current = self._counters()
            self._read_rest(current)
            self._previous[name] = current
            return build_snapshot(name, at, current, previous, self._users)

    def _counters(self) -> Reading:
        """What rates are computed from: CPU, disk, network, swap and process CPU time."""
        reading = Reading(clock=time.monotonic())
        reading.cpu = _cpu(psutil.cpu_times())
        reading.cores = {str(i): _cpu(t) for i, t in enumerate(psutil.cpu_times(percpu=True))}
        swap = psutil.swap_memory()
        reading.swap_total, reading.swap_used = swap.total, swap.used
        reading.swap_in_bytes, reading.swap_out_bytes = swap.sin, swap.sout
        disks = psutil.disk_io_counters(perdisk=True, nowrap=False) or {}
        reading.disks = {n: (c.read_bytes, c.write_bytes) for n, c in disks.items() if keep_disk(n)}
        nics = psutil.net_io_counters(pernic=True, nowrap=False)
        reading.interfaces = {
            n: NetCounters(c.bytes_recv, c.bytes_sent, c.errin + c.errout + c.dropin + c.dropout)
            for n, c in nics.items()
            if keep_interface(n)
        }
        boot = psutil.boot_time()
        reading.boot_id = f"{boot:.0f}"
        reading.uptime = max(0.0, time.time() - boot)
        if self._has_proc:
            reading.processes = _processes_from_proc(self._page_size, self._ticks)
        else:
            reading.processes = _processes_from_psutil(boot)
        return reading

    def _read_rest(self, reading: Reading) -> None:
        """Values without rates: load, memory, filesystems, systemd, reboot flag."""
        reading.cpu_count = psutil.cpu_count() or len(reading.cores) or None
        reading.load = psutil.getloadavg()
        memory = psutil.virtual_memory()
        reading.memory_total, reading.memory_available = memory.total, memory.available
        reading.filesystems = _filesystems()
        reading.failed_units = self._systemd_failed_units(reading)
        reading.reboot_required = REBOOT_REQUIRED.exists()
        if reading.reboot_required:
            with contextlib.suppress(OSError):
                packages = REBOOT_REQUIRED.with_suffix(".pkgs").read_text(errors="replace")
                reading.reboot_required_by = sorted(set(packages.split()))

    def _systemd_failed_units(self, reading: Reading) -> list[str] | None:
        systemctl = shutil.which("systemctl")
        if systemctl is None or not Path("/run/systemd/system").is_dir():
            return None
        now = time.monotonic()
        if now - self._systemd_at < SYSTEMD_EVERY:
            return self._failed_units
        self._systemd_at = now
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [systemctl, "--failed", "--no-legend", "--plain"],
                capture_output=True,
                timeout=SYSTEMCTL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reading.errors["systemd"] = f"systemctl --failed: {exc}"
            return self._failed_units
        if done.returncode != 0:
            reading.errors["systemd"] = f"systemctl --failed exited {done.returncode}"
            return self._failed_units
        self._failed_units = parse_systemd("systemd\n" + done.stdout.decode(errors="replace"))
        return self._failed_units


def _filesystems() -> list[Filesystem]:
    """Mounted filesystems worth a series; like df, one mount per device (bind mounts folded)."""
    mounts = {p.mountpoint: p.fstype for p in psutil.disk_partitions(all=True)}
    by_device: dict[int, Filesystem] = {}
    for mount, fstype in mounts.items():
        if not keep_filesystem(fstype, mount):
            continue
        try:
            st = os.statvfs(mount)
            device = os.stat(mount).st_dev
        except OSError:
            continue  # unmounted meanwhile, or not ours to read
        known = by_device.get(device)
        if st.f_blocks == 0 or (known is not None and len(known.mount) <= len(mount)):
            continue
        by_device[device] = Filesystem(
            mount=mount,
            fstype=fstype,
            size_bytes=st.f_blocks * st.f_frsize,
            used_bytes=(st.f_blocks - st.f_bfree) * st.f_frsize,
            avail_bytes=st.f_bavail * st.f_frsize,
            inodes_total=st.f_files or None,
            inodes_used=(st.f_files - st.f_ffree) if st.f_files else None,
        )
    return list(by_device.values())
