"""Periodic work with one owner: a lease in the database decides which process schedules."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from tend.db import Database, utcnow
from tend.jobs.models import Lease
from tend.jobs.service import JobService

logger = logging.getLogger("tend.jobs.scheduler")

LEASE_NAME = "scheduler"


@dataclass(frozen=True)
class Periodic:
    """Enqueue ``kind`` every ``every`` seconds."""

    kind: str
    every: float
    params: dict[str, Any] = field(default_factory=dict)


async def acquire_lease(database: Database, name: str, owner: str, ttl: float) -> bool:
    """Take or renew a named lease; only one owner holds it until it expires.

    Args:
        database: The database.
        name: The lease's name.
        owner: Who asks.
        ttl: Seconds the lease lasts unless renewed.

    Returns:
        Whether ``owner`` holds the lease now.
    """
    now = utcnow()
    try:
        async with database.session() as session:
            lease = await session.get(Lease, name, with_for_update=True)
            if lease is None:
                session.add(Lease(name=name, owner=owner, expires_at=now + timedelta(seconds=ttl)))
                return True
            if lease.owner != owner and lease.expires_at > now:
                return False
            lease.owner = owner
            lease.expires_at = now + timedelta(seconds=ttl)
            return True
    except IntegrityError:  # two processes created the lease at once; the other one won
        return False


class Scheduler:
    """Enqueues periodic jobs while it holds the scheduler lease.

    Each period's job carries an idempotency key naming the period, so even two owners in a
    handover enqueue it once.
    """

    def __init__(
        self,
        jobs: JobService,
        owner: str,
        periodic: list[Periodic],
        *,
        tick: float = 5.0,
        lease: str = LEASE_NAME,
    ) -> None:
        """Configure the scheduler.

        Args:
            jobs: The job service.
            owner: This process's name.
            periodic: What to schedule.
            tick: Seconds between checks.
            lease: The lease deciding the owner.
        """
        self.jobs = jobs
        self.owner = owner
        self.periodic = periodic
        self.tick = tick
        self.lease = lease
        self.is_owner = False
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Renew the lease and enqueue what is due.

        Returns:
            How many periodic jobs were due (0 when another process owns the schedule).
        """
        self.is_owner = await acquire_lease(
            self.jobs.database, self.lease, self.owner, self.tick * 3
        )
        if not self.is_owner:
            return 0
        now = time.time()
        for item in self.periodic:
            slot = math.floor(now / item.every)
            await self.jobs.enqueue(
                item.kind,
                item.params,
                requested_by="tend",
                idempotency_key=f"periodic:{item.kind}:{slot}",
                max_attempts=1,
            )
        return len(self.periodic)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("scheduler tick failed; retrying")
            await asyncio.sleep(self.tick)

    def start(self) -> None:
        """Start ticking in the background."""
        self._task = asyncio.create_task(self._loop(), name="tend-scheduler")

    async def stop(self) -> None:
        """Stop ticking."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
