"""The latest snapshot and status of every host, kept where every process can read it.

In memory for one machine; in Redis (``TEND_REDIS_URL``) so every API replica sees what the one
monitoring process collected. :func:`build_latest` is the one place that chooses. The database
stays the record of host status; this copy lets ``GET .../metrics`` answer without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from tend.monitoring.registry import Sample, Snapshot
from tend.monitoring.store import HostState
from tend.settings import Settings

logger = logging.getLogger("tend.monitoring.latest")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LatestValues:
    """Latest snapshot per host, in this process's memory (one-machine deployments)."""

    def __init__(self) -> None:
        """Start empty."""
        self._by_host: dict[str, Snapshot] = {}
        self._states: dict[str, HostState] = {}

    async def put(self, snapshot: Snapshot) -> None:
        """Remember a host's newest snapshot."""
        self._by_host[snapshot.host] = snapshot

    async def put_many(self, snapshots: list[Snapshot], states: Sequence[HostState] = ()) -> None:
        """Remember several hosts' newest snapshots (and their status) at once."""
        for snapshot in snapshots:
            await self.put(snapshot)
        for state in states:
            self._states[state.host] = state

    async def get(self, host: str) -> Snapshot | None:
        """Return a host's newest snapshot, if any."""
        return self._by_host.get(host)

    async def get_with_state(self, host: str) -> tuple[Snapshot | None, HostState | None]:
        """Return a host's newest snapshot and status (either may be unknown here)."""
        return self._by_host.get(host), self._states.get(host)

    async def all(self) -> list[Snapshot]:
        """Return every host's newest snapshot, by host name."""
        return [self._by_host[name] for name in sorted(self._by_host)]

    async def forget(self, host: str) -> None:
        """Drop a host (deleted from the inventory)."""
        self._by_host.pop(host, None)
        self._states.pop(host, None)

    async def close(self) -> None:
        """Release connections (nothing to release in memory)."""


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Serialise a snapshot compactly: short keys, samples as ``[metric, value, labels]``."""
    body: dict[str, Any] = {
        "h": snapshot.host,
        "t": _micros(snapshot.at),
        "s": [
            [s.metric, s.value, [list(pair) for pair in s.labels]]
            if s.labels
            else [s.metric, s.value]
            for s in snapshot.samples
        ],
    }
    if snapshot.info:
        body["i"] = snapshot.info
    if snapshot.error is not None:
        body["e"] = snapshot.error
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def _micros(moment: datetime | None) -> int | None:
    return (
        None if moment is None else (moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    )


def _moment(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def encode_state(state: HostState) -> bytes:
    """Serialise a host status (times as Unix microseconds)."""
    body = [
        state.host,
        state.state,
        _micros(state.since),
        _micros(state.last_attempt),
        _micros(state.last_success),
        state.last_error,
        state.consecutive_failures,
    ]
    return json.dumps(body, separators=(",", ":")).encode()


def decode_state(data: bytes | str) -> HostState:
    """Invert :func:`encode_state`."""
    host, state, since, attempt, success, error, failures = json.loads(data)
    return HostState(
        host=host,
        state="up" if state == "up" else "unreachable",
        since=_EPOCH + timedelta(microseconds=since),
        last_attempt=_EPOCH + timedelta(microseconds=attempt),
        last_success=_moment(success),
        last_error=error,
        consecutive_failures=failures,
    )


def decode_snapshot(data: bytes | str) -> Snapshot:
    """Invert :func:`encode_snapshot`."""
    body = json.loads(data)
    samples = [
        Sample(item[0], float(item[1]), tuple((k, v) for k, v in item[2]) if len(item) > 2 else ())
        for item in body["s"]
    ]
    return Snapshot(
        host=body["h"],
        at=_EPOCH + timedelta(microseconds=body["t"]),
        samples=samples,
        info=body.get("i", {}),
        error=body.get("e"),
    )


class RedisLatestValues(LatestValues):
    """Latest snapshot per host in Redis: one key per host with a TTL, and a set of hosts."""

    def __init__(self, url: str, *, ttl: int, prefix: str = "tend:latest:") -> None:
        """Connect lazily to Redis at ``url``.

        Args:
            url: ``redis://...``.
            ttl: Seconds a snapshot is kept when no newer one replaces it.
            prefix: Key prefix.
        """
        super().__init__()
        self._redis = aioredis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        self._ttl = ttl
        self._prefix = prefix
        self._hosts = prefix + "hosts"

    def _key(self, host: str) -> str:
        return f"{self._prefix}host:{host}"

    def _state_key(self, host: str) -> str:
        return f"{self._prefix}state:{host}"

    async def put(self, snapshot: Snapshot) -> None:
        """Store a host's newest snapshot."""
        await self.put_many([snapshot])

    async def put_many(self, snapshots: list[Snapshot], states: Sequence[HostState] = ()) -> None:
        """Store several snapshots (and host states) in one round trip."""
        if not snapshots and not states:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for snapshot in snapshots:
                pipe.set(self._key(snapshot.host), encode_snapshot(snapshot), ex=self._ttl)
            for state in states:
                pipe.set(self._state_key(state.host), encode_state(state), ex=self._ttl)
            if snapshots:
                pipe.sadd(self._hosts, *[s.host for s in snapshots])
            await pipe.execute()

    async def get(self, host: str) -> Snapshot | None:
        """Return a host's newest snapshot, if Redis still holds one."""
        data = await self._redis.get(self._key(host))
        return None if data is None else decode_snapshot(data)

    async def get_with_state(self, host: str) -> tuple[Snapshot | None, HostState | None]:
        """Return a host's newest snapshot and status in one round trip."""
        snapshot, state = await self._redis.mget([self._key(host), self._state_key(host)])
        return (
            None if snapshot is None else decode_snapshot(snapshot),
            None if state is None else decode_state(state),
        )

    async def all(self) -> list[Snapshot]:
        """Return every host's newest snapshot, by host name (two round trips)."""
        members = await self._redis.smembers(self._hosts)
        hosts = sorted(h.decode() if isinstance(h, bytes) else h for h in members)
        if not hosts:
            return []
        found = await self._redis.mget([self._key(h) for h in hosts])
        expired = [host for host, data in zip(hosts, found, strict=True) if data is None]
        if expired:
            await self._redis.srem(self._hosts, *expired)
        return [decode_snapshot(data) for data in found if data is not None]

    async def forget(self, host: str) -> None:
        """Drop a host."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._key(host), self._state_key(host))
            pipe.srem(self._hosts, host)
            await pipe.execute()

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._redis.aclose()


def build_latest(settings: Settings) -> LatestValues:
    """Choose where latest values live: Redis when ``TEND_REDIS_URL`` is set, else memory."""
    if settings.redis_url is not None:
        return RedisLatestValues(
            settings.redis_url.get_secret_value(), ttl=settings.monitor_latest_ttl
        )
    return LatestValues()
