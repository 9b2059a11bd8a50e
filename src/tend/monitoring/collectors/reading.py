"""One raw reading of a host: counters and values as the kernel reports them, before any rate.

The local collector (psutil) and the remote one (/proc text over SSH) both produce a
:class:`Reading`; :mod:`tend.monitoring.collectors.compute` turns two consecutive readings into a
snapshot, so both kinds of host are measured with the same arithmetic. The rules that decide
which filesystems, disks and interfaces are worth a series live here too, shared by both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Cumulative CPU time of one core (or all), in any fixed unit (ticks or seconds)."""

    user: float = 0.0
    nice: float = 0.0
    system: float = 0.0
    idle: float = 0.0
    iowait: float = 0.0
    irq: float = 0.0
    softirq: float = 0.0
    steal: float = 0.0

    @property
    def total(self) -> float:
        """All time accounted (guest time is already inside ``user``)."""
        return (
            self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
        )


@dataclass(frozen=True, slots=True)
class Filesystem:
    """One mounted filesystem's space and inodes."""

    mount: str
    fstype: str
    size_bytes: int
    used_bytes: int
    avail_bytes: int
    inodes_total: int | None = None
    inodes_used: int | None = None


@dataclass(frozen=True, slots=True)
class NetCounters:
    """Cumulative counters of one network interface."""

    rx_bytes: int
    tx_bytes: int
    errors: int  # receive and transmit errors and drops


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One process: identity, state, cumulative CPU seconds and resident memory."""

    pid: int
    ppid: int
    name: str
    state: str  # one letter as in /proc/PID/stat: R S D Z T ...
    cpu_seconds: float
    rss_bytes: int
    started: float  # seconds since boot (with pid, tells a reused pid apart)
    user: str = "?"


@dataclass(slots=True)
class Reading:
    """Everything read from one host at one moment; ``None`` or empty means "not read"."""

    clock: float  # seconds on a monotonic clock, for rates
    cpu: CpuTimes | None = None
    cores: dict[str, CpuTimes] = field(default_factory=dict)
    cpu_count: int | None = None
    load: tuple[float, float, float] | None = None
    memory_total: int | None = None
    memory_available: int | None = None
    swap_total: int | None = None
    swap_used: int | None = None
    swap_in_bytes: int | None = None  # cumulative
    swap_out_bytes: int | None = None  # cumulative
    filesystems: list[Filesystem] = field(default_factory=list)
    disks: dict[str, tuple[int, int]] = field(default_factory=dict)  # read, written (bytes)
    interfaces: dict[str, NetCounters] = field(default_factory=dict)
    processes: list[ProcessRow] | None = None
    process_count: int | None = None
    zombie_count: int | None = None
    uptime: float | None = None
    boot_id: str | None = None  # changes when the host reboots (counters start again)
    failed_units: list[str] | None = None  # None: no systemd on this host
    reboot_required: bool | None = None
    reboot_required_by: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # section -> what went wrong


# Filesystems that hold no user data (kernel interfaces, snapshots of packages, overlays).
_PSEUDO_FSTYPE_NAMES = (
    "autofs binfmt_misc bpf cgroup cgroup2 configfs debugfs devpts devtmpfs efivarfs erofs "
    "fusectl fuse.lxcfs fuse.portal fuse.gvfsd-fuse hugetlbfs iso9660 mqueue nsfs overlay proc "
    "procfs pstore ramfs rootfs rpc_pipefs securityfs selinuxfs squashfs sysfs tracefs nfsd"
)
PSEUDO_FSTYPES = frozenset(_PSEUDO_FSTYPE_NAMES.split())
_PSEUDO_MOUNTS = re.compile(
    r"^/(dev|proc|sys|run/credentials/.+|run/user/\d+/.+|var/lib/docker/.+"
    r"|var/lib/containers/storage/.+|snap/.+)($|/)"
)
_SKIPPED_DISKS = re.compile(r"^(loop|ram|zram|fd|sr)\d+$")
_PARTITIONS = re.compile(r"^((h|s|v|xv)d[a-z]+\d+|(nvme\d+n\d+|mmcblk\d+)p\d+)$")
_SKIPPED_INTERFACES = re.compile(r"^veth")


def keep_filesystem(fstype: str, mount: str) -> bool:
    """Whether a mounted filesystem deserves a series (real storage, tmpfs included)."""
    return fstype not in PSEUDO_FSTYPES and not _PSEUDO_MOUNTS.match(mount)


def keep_disk(device: str) -> bool:
    """Whether a block device deserves I/O series (whole disks, md and dm; not partitions)."""
    return not (_SKIPPED_DISKS.match(device) or _PARTITIONS.match(device))


def keep_interface(name: str) -> bool:
    """Whether a network interface deserves series (container veth pairs come and go)."""
    return not _SKIPPED_INTERFACES.match(name)
