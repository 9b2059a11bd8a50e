"""Live job events inside one process: subscribers get every event published after they join."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class EventBus:
    """In-memory publish/subscribe keyed by job id (the Redis bus replaces it across processes)."""

    def __init__(self) -> None:
        """Create an empty bus."""
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    async def publish(self, job_id: str, event: dict[str, Any]) -> None:
        """Deliver an event to every current subscriber of the job in this process."""
        self.deliver(job_id, event)

    def deliver(self, job_id: str, event: dict[str, Any]) -> None:
        """Hand an event to this process's subscribers."""
        for queue in list(self._subscribers.get(job_id, ())):
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """Receive the job's events while the block runs.

        Yields:
            A queue of events.
        """
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers[job_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[job_id].discard(queue)
            if not self._subscribers[job_id]:
                del self._subscribers[job_id]

    async def start(self) -> None:
        """Nothing to connect in memory."""

    async def close(self) -> None:
        """Nothing to release in memory."""
