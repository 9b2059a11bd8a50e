"""Knowledge about raw devices: whole disks, partitions, memory and harmless sinks."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Literal

from tend.execution.policy.argv import is_pattern, to_fnmatch, words

DeviceKind = Literal["disk", "partition", "memory", "input"]

_DISK_RE = re.compile(
    r"/dev/(?:(?:s|h|v|xv)d[a-z]+|nvme\d+(?:n\d+)?|mmcblk\d+(?:boot\d+|rpmb)?|md\d+|md/[^/]+"
    r"|dm-\d+|mapper/[^/]+|sr\d+|block/[^/]+|disk/by-[^/]+/[^/]+)"
)
_PARTITION_RE = re.compile(
    r"/dev/(?:(?:s|h|v|xv)d[a-z]+\d+|nvme\d+n\d+p\d+|mmcblk\d+p\d+|md\d+p\d+|loop\d+(?:p\d+)?"
    r"|disk/by-(?:uuid|label|partuuid|partlabel)/[^/]+|disk/by-[^/]+/[^/]+-part\d+)"
)
_MEMORY_RE = re.compile(r"/dev/(?:mem|kmem|port)")
_INPUT_RE = re.compile(r"/dev/(?:input/.+|uinput|hidraw\d+)")
_NOT_BLOCK_DIRS = words(
    "pts shm mqueue fd input net snd dri bus char hugepages cpu usb vfio serial v4l dma_heap cgroup"
)
HARMLESS_SINKS = words(
    "/dev/null /dev/zero /dev/full /dev/stdout /dev/stderr /dev/tty /dev/random /dev/urandom"
)
"""Paths whose writing has no lasting effect.

``/dev/stdout``, ``/dev/stderr`` and ``/dev/fd/1|2`` are the command's own output (reopened
through ``/proc/self/fd``, so a redirection of fd 1 or 2 is judged where it is made);
``/dev/tty`` is the command's own controlling terminal, if it has one. Not harmless:
``/dev/stdin`` and ``/dev/fd/0`` (opening them for writing reopens whatever file is the input,
so ``cat < /etc/hosts > /dev/stdin`` truncates ``/etc/hosts``), ``/dev/fd/N`` for N >= 3 (any
file the shell opened, ``exec 3</etc/hosts``), and ``/dev/pts/N``, ``/dev/ttyN``,
``/dev/console`` (other users' terminals: writing there injects text into their sessions).
"""
_HARMLESS_FD_RE = re.compile(r"/(?:dev/fd|proc/self/fd|proc/thread-self/fd)/[12]")

_DEVICE_EXEMPLARS: tuple[tuple[str, DeviceKind], ...] = (
    ("/dev/sda", "disk"),
    ("/dev/vda", "disk"),
    ("/dev/xvda", "disk"),
    ("/dev/nvme0n1", "disk"),
    ("/dev/mmcblk0", "disk"),
    ("/dev/md0", "disk"),
    ("/dev/mapper/vg-root", "disk"),
    ("/dev/sda1", "partition"),
    ("/dev/nvme0n1p1", "partition"),
    ("/dev/mem", "memory"),
)


def device_kind(path: str) -> DeviceKind | None:
    """Classify a normalised path as a raw device.

    Whole disks are ``/dev/sdX``, ``/dev/hdX``, ``/dev/vdX``, ``/dev/xvdX``, ``/dev/nvmeXnY``,
    ``/dev/mmcblkX``, ``/dev/md*``, ``/dev/dm-*``, ``/dev/mapper/*``, ``/dev/disk/by-id|path/*``
    and unknown ``/dev/GROUP/NAME`` (LVM volumes): each holds a whole filesystem or more.
    Partitions are ``/dev/sdX1``, ``/dev/nvme0n1p1``, ``/dev/mmcblk0p1``, ``/dev/loopN`` and
    ``/dev/disk/by-uuid|label|part*/*``. ``/dev/mem``, ``/dev/kmem`` and ``/dev/port`` are
    memory; ``/dev/input/*`` are input devices (keystrokes).

    Args:
        path: A normalised absolute path.

    Returns:
        ``"disk"``, ``"partition"``, ``"memory"``, ``"input"`` or ``None``.
    """
    if not path.startswith("/dev/"):
        return None
    if _MEMORY_RE.fullmatch(path):
        return "memory"
    if _INPUT_RE.fullmatch(path):
        return "input"
    if _PARTITION_RE.fullmatch(path):
        return "partition"
    if _DISK_RE.fullmatch(path):
        return "disk"
    parts = path.split("/")
    if len(parts) == 4 and parts[2] not in _NOT_BLOCK_DIRS and parts[2] != "disk":
        return "disk"
    return None


def is_harmless_sink(path: str) -> bool:
    """Whether writing to ``path`` has no lasting effect (``/dev/null``, ``/dev/stderr`` ...)."""
    return path in HARMLESS_SINKS or _HARMLESS_FD_RE.fullmatch(path) is not None


def possible_device(path: str, *, globbing: bool) -> DeviceKind | None:
    """Like :func:`device_kind`, but a pattern under ``/dev/`` is judged by what it may match."""
    if not is_pattern(path, globbing=globbing):
        return device_kind(path)
    if not path.startswith("/dev/"):
        return None
    pattern = to_fnmatch(path, globbing=globbing)
    for exemplar, kind in _DEVICE_EXEMPLARS:
        if fnmatchcase(exemplar, pattern):
            return kind
    return None
