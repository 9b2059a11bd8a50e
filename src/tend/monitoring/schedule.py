"""The monitor's timing and host-state rules: clock, knobs, per-host phase, backoff, states."""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tend.db import utcnow
from tend.monitoring.store import HostState


class Clock(Protocol):
    """Where the loop reads time: wall time for records, monotonic time for scheduling."""

    def now(self) -> datetime:
        """Return the current aware UTC time."""
        ...

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes back."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current aware UTC time."""
        return utcnow()

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """The loop's knobs (from ``TEND_MONITOR_*`` settings)."""

    interval: float = 10.0
    live_interval: float = 1.0
    concurrency: int = 50
    timeout: float = 8.0
    backoff_max: float = 300.0
    unreachable_after: int = 2
    lease_ttl: float = 15.0
    lease_every: float = 5.0
    inventory_check: float = 2.0  # how often a cheap query looks for inventory changes
    inventory_every: float = 60.0  # full inventory reload even when nothing seemed to change
    max_unwritten_rows: int = 200_000  # samples kept for the next round when a write fails


def grid_floor(moment: float, width: float) -> float:
    """Return the start of the ``width``-wide slot holding ``moment``."""
    return math.floor(moment / width) * width


def phase(name: str, interval: float) -> float:
    """Return a host's fixed offset inside the interval, in ``[0, interval)``."""
    return zlib.crc32(name.encode()) / 2**32 * interval


def next_state(
    previous: HostState | None,
    *,
    host: str,
    at: datetime,
    error: str | None,
    ok: bool,
    unreachable_after: int,
) -> HostState:
    """Return a host's status after one attempt.

    A success makes the host ``up`` (since now, unless it already was). A failure counts; an
    ``up`` host turns ``unreachable`` at ``unreachable_after`` failures in a row, and a host
    never reached is ``unreachable`` at its first failure.
    """
    if ok:
        since = previous.since if previous and previous.state == "up" else at
        return HostState(host, "up", since, at, at, error, 0)
    failures = (previous.consecutive_failures if previous else 0) + 1
    last_success = previous.last_success if previous else None
    if previous is not None and previous.state == "unreachable":
        return HostState(host, "unreachable", previous.since, at, last_success, error, failures)
    if previous is None or failures >= unreachable_after:
        return HostState(host, "unreachable", at, at, last_success, error, failures)
    return HostState(host, "up", previous.since, at, last_success, error, failures)


def backoff_delay(failures: int, *, interval: float, cap: float) -> float:
    """Seconds before retrying a host after ``failures`` failures in a row: doubling, capped."""
    return float(min(interval * 2 ** max(failures - 1, 0), max(cap, interval)))
