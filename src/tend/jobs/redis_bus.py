"""Live job events across processes through Redis pub/sub (the database stays the record)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis

from tend.jobs.bus import EventBus

logger = logging.getLogger("tend.jobs.events")

_CHANNEL_PREFIX = "tend:job:"


class RedisEventBus(EventBus):
    """Publishes every job event to Redis and relays Redis messages to local subscribers.

    Any API replica can then stream any job at once; if Redis is down, followers still see
    events from the database within a second.
    """

    def __init__(self, url: str) -> None:
        """Connect lazily to Redis at ``url``."""
        super().__init__()
        self._redis = aioredis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        self._listener: asyncio.Task[None] | None = None

    async def publish(self, job_id: str, event: dict[str, Any]) -> None:
        """Deliver locally and to every other process."""
        self.deliver(job_id, event)
        try:
            await self._redis.publish(_CHANNEL_PREFIX + job_id, json.dumps(event))
        except (aioredis.RedisError, OSError) as exc:
            logger.warning("redis publish failed", extra={"error": str(exc)})

    async def start(self) -> None:
        """Relay Redis messages of every job to local subscribers."""
        self._listener = asyncio.create_task(self._listen(), name="tend-redis-events")

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.psubscribe(_CHANNEL_PREFIX + "*")
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    # Our own events come back too: a second wake-up is harmless.
                    channel = message["channel"].decode()
                    self.deliver(channel.removeprefix(_CHANNEL_PREFIX), json.loads(message["data"]))
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("redis events lost; reconnecting", extra={"error": str(exc)})
                await asyncio.sleep(1)

    async def close(self) -> None:
        """Stop relaying and close the connection."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()
