"""The embedded job runner: an asyncio loop in the server, its queue in the database.

A restart resumes queued jobs. A job found ``running`` with a stale heartbeat was interrupted by
a crash: it is queued again when its kind is idempotent (up to its attempt limit), otherwise it
is failed with the reason. Nothing stays ``running`` forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from tend.db import utcnow
from tend.jobs.kinds import KINDS, JobContext
from tend.jobs.models import Job
from tend.jobs.service import JobService

if TYPE_CHECKING:
    from tend.context import AppContext

logger = logging.getLogger("tend.jobs")


def worker_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class InProcessRunner:
    """Runs queued jobs inside the server with bounded concurrency."""

    def __init__(
        self,
        jobs: JobService,
        app: AppContext,
        *,
        concurrency: int = 8,
        heartbeat: float = 5.0,
        poll: float = 2.0,
        queues: frozenset[str] | None = None,
    ) -> None:
        """Configure the runner (nothing starts until :meth:`start`).

        Args:
            jobs: The job service.
            app: The app context handed to job handlers.
            concurrency: Most jobs running at once.
            heartbeat: Seconds between heartbeats of running jobs.
            poll: Seconds between looks at the queue when nobody wakes the runner.
            queues: Only take jobs from these queues (``None``: all).
        """
        self.jobs = jobs
        self.app = app
        self.concurrency = concurrency
        self.heartbeat = heartbeat
        self.poll = poll
        self.queues = queues
        self.name = worker_name()
        self._wake = asyncio.Event()
        self._running: dict[str, tuple[asyncio.Task[None], JobContext]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    @property
    def stale_after(self) -> timedelta:
        """How old a running job's heartbeat may get before the job counts as interrupted."""
        return timedelta(seconds=self.heartbeat * 3)

    async def dispatch(self, job_id: str, queue: str) -> None:
        """Wake the loop: a job was committed."""
        self._wake.set()

    async def cancel_running(self, job_id: str) -> None:
        """Cancel a job running here (elsewhere the owner sees ``cancel_requested``)."""
        entry = self._running.get(job_id)
        if entry is not None:
            entry[1].cancelled.set()
            entry[0].cancel()

    async def start(self, *, take_from_queue: bool = True) -> None:
        """Recover interrupted jobs, then start the heartbeat (and the queue loop).

        Args:
            take_from_queue: Poll the database queue (embedded mode); Celery workers get their
                jobs from the broker instead and call :meth:`run_one`.
        """
        await self.recover()
        self._wake.set()  # take what is queued at once (a restart resumes without a poll)
        self._tasks = [asyncio.create_task(self._beat(), name="tend-jobs-heartbeat")]
        if take_from_queue:
            self._tasks.append(asyncio.create_task(self._loop(), name="tend-jobs-loop"))

    async def run_one(self, job_id: str) -> str:
        """Run one job delivered by a broker, to the end (Celery workers call this).

        A job another live worker runs is left alone; one whose worker died is settled first
        (requeued when its kind is idempotent, else failed) and then run if it is queued.

        Returns:
            The job's state afterwards, or ``skipped`` when this worker did not run it.
        """
        deadline = asyncio.get_running_loop().time() + self.stale_after.total_seconds() * 2
        while True:
            async with self.jobs.database.session() as session:
                job = await session.get(Job, job_id)
                if job is None:
                    return "skipped"
                state, kind, params, holder = job.state, job.kind, job.params, job.worker
                attempts, limit, beat = job.attempts, job.max_attempts, job.heartbeat_at
            if state == "running":
                if beat is not None and beat >= utcnow() - self.stale_after:
                    if asyncio.get_running_loop().time() > deadline:
                        return "skipped"
                    await asyncio.sleep(self.heartbeat)
                    continue
                await self._interrupted(
                    job_id, kind, attempts, limit, "its worker died", holder=holder
                )
                continue
            if state != "queued":
                return "skipped"
            if not await self.jobs.mark_running(job_id, self.name, utcnow()):
                return "skipped"
            context = JobContext(
                job_id=job_id, params=params, app=self.app, report=self._reporter(job_id)
            )
            task = asyncio.create_task(self._execute(job_id, kind, context))
            self._running[job_id] = (task, context)
            await asyncio.gather(task, return_exceptions=True)
            return await self._state(job_id)

    async def _state(self, job_id: str) -> str:
        async with self.jobs.database.session() as session:
            return str(
                (await session.execute(select(Job.state).where(Job.id == job_id))).scalar_one()
            )

    async def stop(self) -> None:
        """Stop taking jobs; interrupt running ones (requeued if idempotent, else failed)."""
        self._stop.set()
        self._wake.set()
        # Let the queue loop finish a claim in progress (a claimed job must get its task),
        # then stop it; cancelling it mid-claim would orphan the job as "running".
        loop_tasks = [t for t in self._tasks if t.get_name() == "tend-jobs-loop"]
        if loop_tasks:
            await asyncio.wait(loop_tasks, timeout=10)
        for task in self._tasks:
            task.cancel()
        running = [task for task, _ in self._running.values()]
        for task in running:
            task.cancel()
        await asyncio.gather(*self._tasks, *running, return_exceptions=True)

    async def recover(self) -> int:
        """Settle jobs left ``running`` by a process that stopped beating.

        Returns:
            How many jobs were settled.
        """
        cutoff = utcnow() - self.stale_after
        async with self.jobs.database.session() as session:
            stale = list(
                (
                    await session.execute(
                        select(Job.id, Job.kind, Job.attempts, Job.max_attempts, Job.worker).where(
                            Job.state == "running", Job.heartbeat_at < cutoff
                        )
                    )
                ).all()
            )
        settled = 0
        for job_id, kind, attempts, max_attempts, holder in stale:
            if holder == self.name and job_id in self._running:
                # Ours and alive: only its heartbeat was late (a busy loop or a locked SQLite).
                continue
            await self._interrupted(
                job_id, kind, attempts, max_attempts, "its worker stopped", holder=holder
            )
            settled += 1
        return settled

    async def _interrupted(
        self,
        job_id: str,
        kind: str,
        attempts: int,
        max_attempts: int,
        why: str,
        *,
        holder: str | None,
    ) -> None:
        # Only while ``holder`` still holds it: another worker (or this one's heartbeat) may have
        # settled and claimed the job since it was seen stale; it must not be settled twice.
        known = KINDS.get(kind)
        if known is not None and known.idempotent and attempts < max_attempts:
            error = f"interrupted ({why}); retrying"
            if await self.jobs.finish(job_id, "queued", error=error, only_if_worker=holder):
                logger.warning("requeueing interrupted job", extra={"job": job_id, "kind": kind})
        else:
            reason = (
                f"interrupted ({why}); not retried: kind {kind!r} is not idempotent"
                if known is None or not known.idempotent
                else f"interrupted ({why}) after {attempts} attempts"
            )
            await self.jobs.finish(job_id, "failed", error=reason, only_if_worker=holder)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll):
                    await self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                await self._fill()
            except Exception:
                logger.exception("job loop failed; retrying")

    async def _fill(self) -> None:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return
        query = (
            select(Job.id, Job.kind, Job.params)
            .where(Job.state == "queued")
            .order_by(Job.created_at)
            .limit(free * 2)
        )
        if self.queues is not None:
            query = query.where(Job.queue.in_(self.queues))
        async with self.jobs.database.session() as session:
            candidates = list((await session.execute(query)).all())
        for job_id, kind, params in candidates:
            if len(self._running) >= self.concurrency or self._stop.is_set():
                return
            if await self.jobs.mark_running(job_id, self.name, utcnow()):
                context = JobContext(
                    job_id=job_id, params=params, app=self.app, report=self._reporter(job_id)
                )
                task = asyncio.create_task(self._execute(job_id, kind, context))
                self._running[job_id] = (task, context)

    def _reporter(self, job_id: str) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
        async def report(event_type: str, data: dict[str, Any]) -> None:
            await self.jobs.record(job_id, event_type, data)

        return report

    async def _execute(self, job_id: str, kind: str, context: JobContext) -> None:
        try:
            known = KINDS.get(kind)
            if known is None:
                await self.jobs.finish(job_id, "failed", error=f"unknown job kind {kind!r}")
                return
            try:
                result = await known.handler(context)
            except asyncio.CancelledError:
                if self._stop.is_set() and not context.cancelled.is_set():
                    async with self.jobs.database.session() as session:
                        job = await session.get(Job, job_id)
                        attempts, limit = (job.attempts, job.max_attempts) if job else (1, 1)
                    await self._interrupted(
                        job_id, kind, attempts, limit, "the server stopped", holder=self.name
                    )
                else:
                    await self.jobs.finish(
                        job_id, "cancelled", result=context.partial or None, error="cancelled"
                    )
                return
            except Exception as exc:
                logger.exception("job failed", extra={"job": job_id, "kind": kind})
                await self.jobs.finish(
                    job_id,
                    "failed",
                    result=context.partial or None,
                    error=f"{type(exc).__name__}: {exc}",
                )
                return
            await self.jobs.finish(job_id, "succeeded", result=result or {})
        finally:
            self._running.pop(job_id, None)
            self._wake.set()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                ids = list(self._running)
                if ids:
                    async with self.jobs.database.session() as session:
                        await session.execute(
                            update(Job).where(Job.id.in_(ids)).values(heartbeat_at=utcnow())
                        )
                        wanted = (
                            await session.execute(
                                select(Job.id).where(Job.id.in_(ids), Job.cancel_requested)
                            )
                        ).scalars()
                        to_cancel = list(wanted)
                    for job_id in to_cancel:
                        await self.cancel_running(job_id)
                await self.recover()
            except Exception:
                logger.exception("job heartbeat failed; retrying")
