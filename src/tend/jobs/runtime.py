"""Start and stop the job backend and the scheduler with the server."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import tend.jobs.builtin  # registers the built-in job kinds
import tend.monitoring.rollups  # noqa: F401 - registers monitoring.rollup and monitoring.retention
from tend.assistant import resume as assistant_resume  # noqa: F401 - assistant.resume
from tend.diagnostics import jobs as diagnostics_jobs  # noqa: F401 - the diagnose kind
from tend.jobs.celery_backend import CeleryBackend
from tend.jobs.inprocess import InProcessRunner, worker_name
from tend.jobs.scheduler import Periodic, Scheduler
from tend.monitoring.alerts import jobs as alert_jobs  # noqa: F401 - registers alerts.* kinds

if TYPE_CHECKING:
    from tend.context import AppContext
    from tend.settings import Settings

PERIODIC = [
    Periodic("approvals.expire", every=60.0),
    Periodic("jobs.prune", every=3600.0),
    Periodic("monitoring.rollup", every=60.0),
    Periodic("monitoring.retention", every=600.0),
]


def periodic_work(settings: Settings) -> list[Periodic]:
    """Return PERIODIC plus the work whose interval is a setting (alert evaluation)."""
    return [*PERIODIC, Periodic("alerts.evaluate", every=settings.alert_eval_interval)]


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
    scheduler = (
        Scheduler(context.jobs, owner, periodic_work(settings)) if settings.scheduler else None
    )
    if scheduler is not None:
        scheduler.start()
        context.monitoring.start(owner)  # collects only while it holds the "monitor" lease
    try:
        yield
    finally:
        await context.monitoring.stop()
        if scheduler is not None:
            await scheduler.stop()
        if runner is not None:
            await runner.stop()
        if celery is not None:
            await celery.stop()
        context.jobs.backend = None
        await context.jobs.bus.close()
