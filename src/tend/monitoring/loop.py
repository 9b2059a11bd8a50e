"""The monitor loop: collect every host of the inventory on its own schedule, in one process.

Each host has a fixed phase inside the interval (from a hash of its name), so a fleet is spread
over time rather than collected in one burst. Time is cut into slots of a tenth of the period;
the hosts due in a slot are collected together as one round, written as one batch (so 200
hosts at 10 s make about one write a second, not one per host). A failing host is retried after a
growing delay (doubling, capped) and becomes ``unreachable`` after
``TEND_MONITOR_UNREACHABLE_AFTER`` failures in a row; a host someone watches live is collected
every ``TEND_MONITOR_LIVE_INTERVAL``. Only the holder of the ``monitor`` lease collects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import func, select, update

from tend.db import Database, utcnow
from tend.execution.targets import HostSnapshot
from tend.hosts.models import Host
from tend.jobs.models import Lease
from tend.jobs.scheduler import acquire_lease
from tend.monitoring.latest import LatestValues
from tend.monitoring.registry import Collector, Sample, Snapshot
from tend.monitoring.schedule import (
    Clock,
    LoopConfig,
    SystemClock,
    backoff_delay,
    grid_floor,
    next_state,
    phase,
)
from tend.monitoring.store import HostState, MetricStore
from tend.monitoring.watchers import LiveWatchers

logger = logging.getLogger("tend.monitoring.loop")

LEASE_NAME = "monitor"
MAX_ERROR_CHARS = 2000

CollectorFactory = Callable[[HostSnapshot], Collector]
RoundListener = Callable[[list[Snapshot], list[HostState]], Awaitable[None]]


@dataclass(slots=True)
class _Host:
    target: HostSnapshot
    next_at: float
    collector: Collector | None = None
    collector_transport: str | None = None
    state: HostState | None = None
    busy: bool = False
    live: bool = False
    attempts: int = field(default=0)
    # Hosts due this close to now join the current round (a tenth of the host's period).
    window: float = 0.0


class MonitorLoop:
    """Collects the inventory on schedule while this process holds the ``monitor`` lease."""

    def __init__(
        self,
        *,
        database: Database,
        store: MetricStore,
        latest: LatestValues,
        watchers: LiveWatchers,
        collectors: CollectorFactory,
        owner: str,
        config: LoopConfig,
        clock: Clock | None = None,
        listeners: list[RoundListener] | None = None,
        lease: str = LEASE_NAME,
    ) -> None:
        """Configure the loop (nothing runs until :meth:`start` or :meth:`tick`).

        Args:
            database: The database (inventory and lease).
            store: Where rounds are written.
            latest: Where the newest snapshot of each host goes.
            watchers: Live watches (hosts collected every ``live_interval``).
            collectors: Builds the collector of a host (one per host: it keeps counters).
            owner: This process's name for the lease.
            config: Intervals, limits and thresholds.
            clock: Time source (tests pass a controllable one).
            listeners: Called after each round is stored (alerts, tests).
            lease: Name of the lease deciding which process collects.
        """
        self.database = database
        self.store = store
        self.latest = latest
        self.watchers = watchers
        self.collectors = collectors
        self.owner = owner
        self.config = config
        self.clock = clock or SystemClock()
        self.listeners = listeners if listeners is not None else []
        self.lease = lease
        self.is_owner = False
        self.hosts: dict[str, _Host] = {}
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._lease_due = -float("inf")
        self._inventory_due = -float("inf")
        self._inventory_check_due = -float("inf")
        self._fingerprint: tuple[object, ...] | None = None
        self._unwritten: list[Snapshot] = []
        self._unwritten_states: dict[str, HostState] = {}
        self._rounds: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = watchers.changed

    # --- scheduling ------------------------------------------------------------------------

    async def tick(self) -> list[str]:
        """Renew the lease and the inventory when due, and start a round of the due hosts.

        Returns:
            The hosts the new round collects (empty when none is due or another owner rules).
        """
        self._wake.clear()
        now = self.clock.monotonic()
        if now >= self._lease_due:
            await self._renew_lease(now)
        if not self.is_owner:
            return []
        if now >= self._inventory_due or (
            now >= self._inventory_check_due and await self._inventory_changed(now)
        ):
            await self._load_inventory(now)
        watched = await self._watched()
        due: list[_Host] = []
        for name, host in self.hosts.items():
            if host.busy:
                continue
            live = name in watched and (host.state is None or host.state.consecutive_failures == 0)
            period = self.config.live_interval if live else self.config.interval
            if live and not host.live:  # a new watch is served at once
                host.next_at = min(host.next_at, now)
            host.live = live
            host.window = period / 10
            # Due in the current slot: collected up to a slot early, together with the others.
            if host.next_at - host.window <= grid_floor(now, host.window):
                host.next_at = max(host.next_at + period, now + period / 2)
                host.busy = True
                due.append(host)
        if due:
            task = asyncio.create_task(self._round(due), name="tend-monitor-round")
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)
        return [host.target.name for host in due]

    async def _watched(self) -> set[str]:
        if not self.hosts:
            return set()
        try:
            return await self.watchers.hosts()
        except Exception as exc:  # Redis down: collect at the normal interval meanwhile
            logger.warning("live watches unavailable", extra={"error": str(exc)})
            return set()

    async def settle(self) -> None:
        """Wait for the rounds in flight to finish."""
        while self._rounds:
            await asyncio.gather(*list(self._rounds), return_exceptions=True)

    async def run_once(self) -> list[str]:
        """Run one tick and wait for its round (tests and tools)."""
        started = await self.tick()
        await self.settle()
        return started

    def sleep_time(self) -> float:
        """Return how long the driver may sleep before something is due."""
        now = self.clock.monotonic()
        wake = min(self._lease_due, self._inventory_due, self._inventory_check_due)
        if self.is_owner:
            for host in self.hosts.values():
                if not host.busy:  # the start of the slot in which the host is due
                    slot = math.ceil((host.next_at - host.window) / host.window) * host.window
                    wake = min(wake, slot)
            if self.watchers.polled and self.hosts:
                wake = min(wake, now + self.config.live_interval)
        return min(max(wake - now, 0.01), self.config.lease_every)

    async def _renew_lease(self, now: float) -> None:
        self._lease_due = now + self.config.lease_every
        try:
            owner = await acquire_lease(
                self.database, self.lease, self.owner, self.config.lease_ttl
            )
        except Exception:
            logger.exception("monitor lease check failed; keeping the previous answer")
            return
        if owner and not self.is_owner:
            logger.info("this process collects the fleet's metrics", extra={"owner": self.owner})
            self._inventory_due = -float("inf")
            self.hosts.clear()  # reloaded with the previous owner's host states
        self.is_owner = owner

    async def _inventory_changed(self, now: float) -> bool:
        """Whether hosts were added, removed or changed since the last load (one cheap query)."""
        self._inventory_check_due = now + self.config.inventory_check
        async with self.database.session() as session:
            row = (await session.execute(select(func.count(), func.max(Host.updated_at)))).one()
        return tuple(row) != self._fingerprint

    async def _load_inventory(self, now: float) -> None:
        self._inventory_due = now + self.config.inventory_every
        self._inventory_check_due = now + self.config.inventory_check
        async with self.database.session() as session:
            rows = (await session.execute(select(Host))).scalars().all()
            targets = {host.name: HostSnapshot.of(host) for host in rows}
        stamps = [host.updated_at for host in rows]
        self._fingerprint = (len(rows), max(stamps) if stamps else None)
        fresh = [name for name in targets if name not in self.hosts]
        states = await self.store.states(fresh) if fresh else {}
        for name in fresh:
            self.hosts[name] = _Host(
                targets[name],
                now + phase(name, self.config.interval),
                state=states.get(name),
                window=self.config.interval / 10,
            )
        for name, target in targets.items():
            self.hosts[name].target = target
        gone = [name for name in self.hosts if name not in targets]
        for name in gone:
            forget = getattr(self.hosts.pop(name).collector, "forget", None)
            if callable(forget):  # collectors that keep per-host counters drop them
                forget(name)
            try:
                await self.latest.forget(name)
            except Exception as exc:  # the cache entry expires by itself
                logger.warning("could not drop cached values", extra={"error": str(exc)})
        await self.store.forget(gone)

    # --- one round -------------------------------------------------------------------------

    async def _collect(self, host: _Host) -> tuple[Snapshot, HostState]:
        """Collect one host, record the outcome at once, then free it for its next slot.

        (A host finished early is free even while slower hosts of its round still run.)
        """
        try:
            collected, failure = await self._attempt(host)
            return self._record(host, collected, failure, self.clock.now())
        finally:
            host.busy = False

    async def _attempt(self, host: _Host) -> tuple[Snapshot | None, str | None]:
        target = host.target
        async with self._semaphore:
            try:
                if host.collector is None or host.collector_transport != target.transport:
                    host.collector = self.collectors(target)
                    host.collector_transport = target.transport
                async with asyncio.timeout(self.config.timeout):
                    snapshot = await host.collector.collect(target)
            except TimeoutError:
                return None, f"collection timed out after {self.config.timeout:g} s"
            except Exception as exc:  # a collector must not take the loop down
                logger.warning("collector failed", extra={"host": target.name, "error": str(exc)})
                return None, f"collector failed: {type(exc).__name__}: {exc}"
        if _failed(snapshot):
            return snapshot, snapshot.error or "the collector reported the host down"
        return snapshot, None

    async def _round(self, hosts: list[_Host]) -> None:
        try:
            outcomes = await asyncio.gather(*(self._collect(host) for host in hosts))
            snapshots = [snapshot for snapshot, _ in outcomes]
            states = [state for _, state in outcomes]
        finally:
            for host in hosts:
                host.busy = False
            self._wake.set()
        # The cache and the database fail independently; neither stops the other or the loop.
        try:
            await self.latest.put_many(snapshots, states)
        except Exception:
            logger.exception("monitor round: caching the latest values failed")
        await self._write(snapshots, states)
        for listener in self.listeners:
            try:
                await listener(snapshots, states)
            except Exception:
                logger.exception("monitor round: a listener failed")

    async def _write(self, snapshots: list[Snapshot], states: list[HostState]) -> None:
        """Store a round, with what earlier failed writes left over (kept, bounded)."""
        batch = [*self._unwritten, *snapshots]
        latest = {**self._unwritten_states, **{state.host: state for state in states}}
        self._unwritten, self._unwritten_states = [], {}
        try:
            await self.store.write_round(batch, list(latest.values()))
        except Exception:
            logger.exception("monitor round: storing the samples failed; retrying next round")
            rows = 0
            for index in range(len(batch) - 1, -1, -1):  # keep the newest, within the cap
                rows += len(batch[index].samples)
                if rows > self.config.max_unwritten_rows:
                    batch = batch[index + 1 :]
                    break
            self._unwritten = [*batch, *self._unwritten]
            self._unwritten_states = {**latest, **self._unwritten_states}

    def _record(
        self, host: _Host, snapshot: Snapshot | None, failure: str | None, at: datetime
    ) -> tuple[Snapshot, HostState]:
        """Update a host's state from one attempt; return what to store."""
        ok = failure is None and snapshot is not None
        error = failure if failure is not None else (snapshot.error if snapshot else None)
        if error is not None:
            error = error[:MAX_ERROR_CHARS]
        state = next_state(
            host.state,
            host=host.target.name,
            at=snapshot.at if ok and snapshot is not None else at,
            error=error,
            ok=ok,
            unreachable_after=self.config.unreachable_after,
        )
        host.state = state
        host.attempts += 1
        if not ok:
            host.next_at = self.clock.monotonic() + self._backoff(state.consecutive_failures)
        return _with_host_up(snapshot, host.target.name, at, error, ok=ok), state

    def _backoff(self, failures: int) -> float:
        return backoff_delay(failures, interval=self.config.interval, cap=self.config.backoff_max)

    # --- running ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except Exception:
                logger.exception("monitor tick failed; retrying")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # arrives as the event is set (a round just ended), and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sleep_time()):
                    await self._wake.wait()

    def start(self) -> None:
        """Start collecting in the background."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="tend-monitor")

    async def stop(self) -> None:
        """Stop collecting, cancel rounds in flight and hand the lease over at once."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for task in list(self._rounds):
            task.cancel()
        await asyncio.gather(*list(self._rounds), return_exceptions=True)
        if self.is_owner:
            self.is_owner = False
            # Best effort and brief: the lease expires by itself anyway.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0), self.database.session() as session:
                    await session.execute(
                        update(Lease)
                        .where(Lease.name == self.lease, Lease.owner == self.owner)
                        .values(expires_at=utcnow())
                    )


def _failed(snapshot: Snapshot) -> bool:
    """Whether a snapshot reports a failed collection (partial errors still count as up)."""
    if snapshot.value("host_up") == 0:
        return True
    return snapshot.error is not None and all(s.metric == "host_up" for s in snapshot.samples)


def _with_host_up(
    snapshot: Snapshot | None, host: str, at: datetime, error: str | None, *, ok: bool
) -> Snapshot:
    """Add ``host_up`` to a snapshot; a failed collection keeps nothing else."""
    if not ok or snapshot is None:
        return Snapshot(host=host, at=at, samples=[Sample("host_up", 0.0)], error=error)
    if snapshot.value("host_up") is None:
        snapshot = replace(snapshot, samples=[*snapshot.samples, Sample("host_up", 1.0)])
    return snapshot
