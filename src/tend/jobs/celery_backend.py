"""Distributed jobs on Celery (Redis or RabbitMQ): the API side sends, workers run.

The message only carries the job id; the job itself lives in the database. Messages are
acknowledged late, so a worker killed mid-job has its job redelivered; the runner then settles
the dead attempt (idempotent kinds resume, and ``run`` never runs a host twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Celery
from sqlalchemy import select, update

from tend.db import Database, utcnow
from tend.jobs.models import Job
from tend.jobs.service import BrokerUnavailable, JobService
from tend.settings import Settings

if TYPE_CHECKING:
    from tend.context import AppContext
    from tend.jobs.inprocess import InProcessRunner

logger = logging.getLogger("tend.jobs.celery")

TASK_NAME = "tend.run_job"
_REDISPATCH_EVERY = 15.0
_REDISPATCH_AGE = timedelta(seconds=30)


def make_celery(settings: Settings) -> Celery:
    """Build the Celery app from settings (late acknowledgement, one message at a time).

    Args:
        settings: Settings with ``broker_url``.

    Returns:
        The Celery app with tend's task registered.

    Raises:
        ValueError: When no broker is configured.
    """
    if settings.broker_url is None:
        msg = "TEND_JOBS=celery needs TEND_BROKER_URL (redis://... or amqp://...)"
        raise ValueError(msg)
    app = Celery("tend", broker=settings.broker_url.get_secret_value())
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="default",
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout,
            # Redis: look for unacked messages of dead workers every half visibility timeout
            # (kombu's default, 10 s x a throttle of 10, delays redelivery by ~100 s).
            "unacked_restore_interval": max(1, settings.celery_visibility_timeout // 2),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )

    @app.task(  # type: ignore[untyped-decorator]
        name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True
    )
    def run_job(job_id: str) -> str:
        return worker_runtime(settings).run(job_id)

    return app


class CeleryBackend:
    """API side: sends committed jobs to the broker and re-sends any that never left."""

    def __init__(self, settings: Settings, jobs: JobService) -> None:
        """Bind the backend.

        Args:
            settings: Settings (broker).
            jobs: The job service (for re-dispatch).
        """
        self.app = make_celery(settings)
        self.jobs = jobs
        self._task: asyncio.Task[None] | None = None

    def _send(self, job_id: str, queue: str) -> None:
        self.app.send_task(TASK_NAME, args=[job_id], queue=queue, retry=False)

    async def dispatch(self, job_id: str, queue: str) -> None:
        """Send a job's id to its queue.

        Raises:
            BrokerUnavailable: When the broker cannot be reached (the job stays queued).
        """
        try:
            async with asyncio.timeout(10):
                await asyncio.to_thread(self._send, job_id, queue)
        except Exception as exc:  # kombu/redis/amqp raise many types; all mean "not sent"
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        async with self.jobs.database.session() as session:
            await session.execute(
                update(Job).where(Job.id == job_id).values(dispatched_at=utcnow())
            )

    async def cancel_running(self, job_id: str) -> None:
        """Nothing to send: the worker's heartbeat sees ``cancel_requested`` and stops."""

    async def redispatch(self) -> int:
        """Send queued jobs that never reached the broker.

        The broker was down, or the API stopped between commit and send. A duplicate is
        harmless (only one worker can claim a queued job), but jobs that merely wait in a long
        queue are not re-sent.

        Returns:
            How many were re-sent.
        """
        cutoff = utcnow() - _REDISPATCH_AGE
        async with self.jobs.database.session() as session:
            rows = list(
                (
                    await session.execute(
                        select(Job.id, Job.queue)
                        .where(
                            Job.state == "queued",
                            Job.dispatched_at.is_(None),
                            Job.created_at < cutoff,
                        )
                        .limit(500)
                    )
                ).all()
            )
        sent = 0
        for job_id, queue in rows:
            try:
                await self.dispatch(job_id, queue)
                sent += 1
            except BrokerUnavailable:
                logger.warning("broker still unreachable; will retry", extra={"job": job_id})
                break
        return sent

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(_REDISPATCH_EVERY)
            with contextlib.suppress(Exception):
                await self.redispatch()

    def start(self) -> None:
        """Start re-dispatching in the background."""
        self._task = asyncio.create_task(self._loop(), name="tend-redispatch")

    async def stop(self) -> None:
        """Stop re-dispatching and close the broker connections."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.to_thread(self.app.close)


class WorkerRuntime:
    """One per worker process: an event loop thread holding the app context and a runner.

    Celery runs tasks in threads; each submits its job to this loop, so the database pool and
    the SSH pool are shared by every task of the process.
    """

    def __init__(self, settings: Settings) -> None:
        """Start the loop thread and build the app context in it."""
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="tend")
        self._thread.start()
        self.runner: InProcessRunner = self._call(self._build())

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _build(self) -> InProcessRunner:
        import tend.jobs.builtin  # noqa: F401, PLC0415 - registers the job kinds
        from tend.context import AppContext  # noqa: PLC0415 - avoids an import cycle
        from tend.jobs.inprocess import InProcessRunner  # noqa: PLC0415
        from tend.jobs.runtime import load_job_modules  # noqa: PLC0415

        load_job_modules(self.settings)

        context: AppContext = AppContext.build(self.settings, Database.from_settings(self.settings))
        # Jobs a job enqueues here (the parts of a split run) go to the broker at once.
        context.jobs.backend = CeleryBackend(self.settings, context.jobs)
        runner = InProcessRunner(
            context.jobs,
            context,
            concurrency=self.settings.jobs_concurrency,
            heartbeat=self.settings.job_heartbeat,
        )
        await runner.start(take_from_queue=False)
        return runner

    def run(self, job_id: str) -> str:
        """Run one job to the end (called from a Celery task thread)."""
        state: str = self._call(self.runner.run_one(job_id))
        return state


_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def worker_runtime(settings: Settings) -> WorkerRuntime:
    """Return this process's worker runtime, building it on first use."""
    global _runtime  # noqa: PLW0603 - one runtime per worker process, built lazily
    with _runtime_lock:
        if _runtime is None:
            _runtime = WorkerRuntime(settings)
        return _runtime
