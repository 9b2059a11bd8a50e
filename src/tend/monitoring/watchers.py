"""Who is watching a host live: while anyone is, the monitor collects it every second.

The live view may be served by any API replica while the monitor loop runs in one process, so
with Redis (``TEND_REDIS_URL``) watches live in a sorted set scored by expiry and are refreshed
while the stream is open; without Redis they live in this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from tend.settings import Settings

logger = logging.getLogger("tend.monitoring.watchers")

WATCH_TTL = 10.0  # seconds a watch outlives its stream's last refresh (a crashed replica)


class LiveWatchers:
    """Open watches per host, in memory; ``changed`` wakes the loop when one opens."""

    #: Whether the monitor loop must poll :meth:`hosts` (watches made in other processes).
    polled = False

    def __init__(self) -> None:
        """Start with no watches."""
        self._watches: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def add(self, host: str) -> str:
        """Open a watch on ``host``; return its token."""
        token = uuid.uuid4().hex
        self._watches[token] = host
        self.changed.set()
        return token

    async def refresh(self, token: str, host: str) -> None:
        """Keep a watch alive (only needed where watches expire)."""

    async def remove(self, token: str, host: str) -> None:
        """Close a watch."""
        self._watches.pop(token, None)
        self.changed.set()

    async def hosts(self) -> set[str]:
        """Return the hosts watched right now."""
        return set(self._watches.values())

    @contextlib.asynccontextmanager
    async def watch(self, host: str) -> AsyncIterator[None]:
        """Watch ``host`` for the duration of the block, refreshed while it lasts.

        If Redis is unreachable the block still runs: the host is then collected at the
        normal interval (logged), and an orphaned watch expires by itself.
        """
        try:
            token = await self.add(host)
        except (aioredis.RedisError, OSError) as exc:
            logger.warning("live watch not registered", extra={"host": host, "error": str(exc)})
            yield
            return
        refresher = asyncio.create_task(self._keep(token, host), name="tend-live-watch")
        try:
            yield
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self.remove(token, host)

    async def _keep(self, token: str, host: str) -> None:
        while True:
            await asyncio.sleep(WATCH_TTL / 3)
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self.refresh(token, host)

    async def close(self) -> None:
        """Release connections."""


class RedisLiveWatchers(LiveWatchers):
    """Watches in a Redis sorted set (member ``host|token``, score = expiry), for replicas."""

    polled = True

    def __init__(self, url: str, *, key: str = "tend:live-watches") -> None:
        """Connect lazily to Redis at ``url``."""
        super().__init__()
        self._redis = aioredis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        self._key = key

    async def add(self, host: str) -> str:
        """Open a watch on ``host``; return its token."""
        token = uuid.uuid4().hex
        await self.refresh(token, host)
        self.changed.set()
        return token

    async def refresh(self, token: str, host: str) -> None:
        """Push the watch's expiry forward."""
        await self._redis.zadd(self._key, {f"{host}|{token}": time.time() + WATCH_TTL})

    async def remove(self, token: str, host: str) -> None:
        """Close a watch."""
        await self._redis.zrem(self._key, f"{host}|{token}")
        self.changed.set()

    async def hosts(self) -> set[str]:
        """Return the hosts with an unexpired watch."""
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self._key, "-inf", now)
            pipe.zrange(self._key, 0, -1)
            _, members = await pipe.execute()
        return {m.decode().rsplit("|", 1)[0] for m in members}

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._redis.aclose()


def build_watchers(settings: Settings) -> LiveWatchers:
    """Choose where watches live: Redis when ``TEND_REDIS_URL`` is set, else memory."""
    if settings.redis_url is not None:
        return RedisLiveWatchers(settings.redis_url.get_secret_value())
    return LiveWatchers()
