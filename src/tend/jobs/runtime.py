"""Start and stop the job backend and the scheduler with the server."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import tend.jobs.builtin  # noqa: F401 - registers the built-in job kinds
from tend.jobs.celery_backend import CeleryBackend
from tend.jobs.inprocess import InProcessRunner, worker_name
from tend.jobs.scheduler import Periodic, Scheduler

if TYPE_CHECKING:
    from tend.context import AppContext
    from tend.settings import Settings

PERIODIC = [Periodic("approvals.expire", every=60.0)]


def load_job_modules(settings: Settings) -> None:
    """Import the extra modules named by ``TEND_JOB_MODULES`` (they register job kinds).

    Raises:
        ImportError: When a module cannot be imported.
    """
    for name in settings.job_modules:
        importlib.import_module(name)


@asynccontextmanager
async def run_jobs(context: AppContext) -> AsyncIterator[None]:
    """Run the job backend (and the scheduler) while the server runs.

    ``TEND_JOBS=inprocess`` runs jobs here; ``celery`` sends them to workers and re-sends any
    the broker missed.

    Args:
        context: The app context.

    Yields:
        Control while the server runs.
    """
    settings = context.settings
    load_job_modules(settings)
    await context.jobs.bus.start()
    runner: InProcessRunner | None = None
    celery: CeleryBackend | None = None
    if settings.jobs == "celery":
        celery = CeleryBackend(settings, context.jobs)
        context.jobs.backend = celery
        celery.start()
    else:
        runner = InProcessRunner(
            context.jobs,
            context,
            concurrency=settings.jobs_concurrency,
            heartbeat=settings.job_heartbeat,
        )
        context.jobs.backend = runner
        await runner.start()
    owner = runner.name if runner is not None else worker_name()
    scheduler = Scheduler(context.jobs, owner, PERIODIC) if settings.scheduler else None
    if scheduler is not None:
        scheduler.start()
    try:
        yield
    finally:
        if scheduler is not None:
            await scheduler.stop()
        if runner is not None:
            await runner.stop()
        if celery is not None:
            await celery.stop()
        context.jobs.backend = None
        await context.jobs.bus.close()
