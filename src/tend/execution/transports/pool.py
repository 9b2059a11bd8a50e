"""A pool of SSH connections: one per host, reused, bounded, reaped when idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType

from tend.execution.transports.base import FailureKind, NewHostKey, SshTarget, TransportError
from tend.execution.transports.ssh import (
    SshConnection,
    SshConnector,
    SshSession,
    SshTransport,
    StaleConnectionError,
    where,
)

logger = logging.getLogger("tend.execution.ssh")

PoolKey = tuple[str, str, int, str | None]


def pool_key(target: SshTarget) -> PoolKey:
    """Connections are shared by targets with the same name, address, port and user."""
    return (target.name, target.address, target.port, target.user)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the pool, for tests and monitoring."""

    open_connections: int
    connecting: int
    active_channels: int
    hosts: int  # hosts with an entry (connection, connect or lease under way)
    connects: int
    reconnects: int


@dataclass(eq=False)
class _Entry:
    key: PoolKey
    sem: asyncio.Semaphore
    conn: SshConnection | None = None
    connecting: asyncio.Task[SshConnection] | None = None
    users: int = 0  # leases holding or waiting for a channel
    channels: int = 0  # channels open right now
    last_used: float = field(default_factory=time.monotonic)


class SshPool:
    """SSH connections shared by all commands, one per host.

    - Concurrent first use of a host opens one connection; different hosts connect in parallel
      and no lock is held across a connect, so a slow or failing host delays only itself.
    - At most ``max_connections`` are open (or opening): idle ones are evicted least recently
      used first; when none is idle, a new connection waits for one to become free.
    - At most ``max_channels_per_host`` commands run at once on one host; more wait their turn.
    - Connections idle longer than ``idle_timeout`` are closed by a background reaper.
    - If the cached connection turns out dead when a channel is opened (before the command could
      have started), it is dropped and one new connection is tried. A command that may have
      started is never retried.
    """

    def __init__(
        self,
        *,
        max_connections: int = 200,
        max_channels_per_host: int = 8,
        idle_timeout: float = 300.0,
        keepalive_interval: float = 15.0,
        on_new_host_key: NewHostKey | None = None,
        remote_timeout: bool = True,
    ) -> None:
        """Create an empty pool (nothing connects until first use).

        Args:
            max_connections: Bound on connections open or opening at once.
            max_channels_per_host: Bound on concurrent commands per host.
            idle_timeout: Seconds after which an unused connection is closed.
            keepalive_interval: Seconds between SSH keepalives.
            on_new_host_key: Awaited once when trust-on-first-use accepts a host key.
            remote_timeout: Transports also enforce timeouts remotely with coreutils ``timeout``.
        """
        if max_connections < 1 or max_channels_per_host < 1:
            raise ValueError("pool bounds must be at least 1")
        self.max_connections = max_connections
        self.max_channels_per_host = max_channels_per_host
        self.idle_timeout = idle_timeout
        self.remote_timeout = remote_timeout
        self.connector = SshConnector(
            keepalive_interval=keepalive_interval, on_new_host_key=on_new_host_key
        )
        self._entries: dict[PoolKey, _Entry] = {}
        self._slots = 0  # connections open or opening
        self._connects = 0
        self._reconnects = 0
        self._changed = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    # ------------------------------------------------------------------ public API

    def transport(self, target: SshTarget) -> SshTransport:
        """A transport running commands on ``target`` through this pool."""
        return SshTransport(self, target, remote_timeout=self.remote_timeout)

    def stats(self) -> PoolStats:
        """Counts of connections and channels right now."""
        entries = list(self._entries.values())
        return PoolStats(
            open_connections=sum(1 for e in entries if e.conn is not None and e.conn.alive),
            connecting=sum(1 for e in entries if e.connecting is not None),
            active_channels=sum(e.channels for e in entries),
            hosts=len(entries),
            connects=self._connects,
            reconnects=self._reconnects,
        )

    async def close(self) -> None:
        """Close every connection and wait until they are closed."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for entry in list(self._entries.values()):
            if entry.connecting is not None:
                entry.connecting.cancel()
            self._drop(entry)
        self._entries.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        self._notify()

    async def __aenter__(self) -> SshPool:
        """Use the pool as an async context manager; it is closed on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the pool."""
        await self.close()

    @contextlib.asynccontextmanager
    async def session(self, target: SshTarget, command: str) -> AsyncIterator[SshSession]:
        """Run ``command`` on ``target`` in a channel of the pooled connection.

        Waits for a channel slot of the host, connects if needed (reconnecting once when the
        cached connection turns out dead), and yields the started session. On exit a command
        still running is killed (its process group, over a second channel) and its channel closed.

        Raises:
            TransportError: When the host cannot be reached or cannot run the command.
        """
        if self._closed:
            raise TransportError(FailureKind.OTHER, "the SSH pool is closed")
        entry = self._entry(target)
        entry.users += 1
        try:
            async with entry.sem:
                session = await self._open(entry, target, command)
                entry.channels += 1
                try:
                    yield session
                finally:
                    entry.channels -= 1
                    await session.abort()
        finally:
            entry.users -= 1
            entry.last_used = time.monotonic()
            self._notify()

    # ------------------------------------------------------------------ internals

    def _entry(self, target: SshTarget) -> _Entry:
        key = pool_key(target)
        entry = self._entries.get(key)
        if entry is None:
            entry = _Entry(key, asyncio.Semaphore(self.max_channels_per_host))
            self._entries[key] = entry
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap(), name="tend-ssh-pool-reaper")
        return entry

    async def _open(self, entry: _Entry, target: SshTarget, command: str) -> SshSession:
        conn = await self._connection(entry, target)
        try:
            return await conn.open_session(command)
        except StaleConnectionError as exc:
            logger.info("connection to %s was dropped (%s); reconnecting once", where(target), exc)
            if entry.conn is conn:
                self._drop(entry)
            self._reconnects += 1
        conn = await self._connection(entry, target)
        try:
            return await conn.open_session(command)
        except StaleConnectionError as exc:
            if entry.conn is conn:
                self._drop(entry)
            raise TransportError(
                FailureKind.CONNECTION_LOST,
                f"connection to {where(target)} was lost before the command started: {exc}",
            ) from exc

    async def _connection(self, entry: _Entry, target: SshTarget) -> SshConnection:
        """The entry's live connection, opening it (once, shared by all waiters) if needed."""
        entry.last_used = time.monotonic()
        if entry.conn is not None:
            if entry.conn.alive:
                return entry.conn
            self._drop(entry)
        if entry.connecting is None:
            task = asyncio.create_task(self._connect(entry, target))
            task.add_done_callback(_retrieve)
            entry.connecting = task
        # Shielded: one waiter being cancelled does not cancel the connect others wait for.
        return await asyncio.shield(entry.connecting)

    async def _connect(self, entry: _Entry, target: SshTarget) -> SshConnection:
        try:
            await self._reserve_slot()
            try:
                conn = await self.connector.connect(target)
            except BaseException:
                self._release_slot()
                raise
            if self._closed:
                conn.close()
                self._release_slot()
                raise TransportError(FailureKind.OTHER, "the SSH pool is closed")
            entry.conn = conn
            self._connects += 1
            return conn
        finally:
            entry.connecting = None

    async def _reserve_slot(self) -> None:
        while True:
            if self._closed:
                raise TransportError(FailureKind.OTHER, "the SSH pool is closed")
            if self._slots < self.max_connections:
                self._slots += 1
                return
            idle = [e for e in self._entries.values() if e.conn is not None and e.users == 0]
            if idle:
                victim = min(idle, key=lambda e: e.last_used)
                logger.debug("evicting the idle connection to %s", victim.key[0])
                self._drop(victim)
                continue
            changed = self._changed
            await changed.wait()

    def _release_slot(self) -> None:
        self._slots -= 1
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _drop(self, entry: _Entry) -> None:
        """Forget the entry's connection and close it in the background."""
        conn = entry.conn
        if conn is None:
            return
        entry.conn = None
        conn.close()
        task = asyncio.ensure_future(conn.wait_closed())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._release_slot()

    async def _reap(self) -> None:
        interval = max(0.05, min(self.idle_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for key, entry in list(self._entries.items()):
                if entry.conn is not None and (
                    not entry.conn.alive
                    or (entry.users == 0 and now - entry.last_used > self.idle_timeout)
                ):
                    self._drop(entry)
                if entry.conn is None and entry.connecting is None and entry.users == 0:
                    del self._entries[key]


def _retrieve(task: asyncio.Task[SshConnection]) -> None:
    """Mark a connect's failure as seen even if every waiter was cancelled."""
    if not task.cancelled():
        task.exception()
