"""Start and stop the job backend and the scheduler with the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import tend.jobs.builtin  # noqa: F401 - registers the built-in job kinds
from tend.jobs.inprocess import InProcessRunner
from tend.jobs.scheduler import Periodic, Scheduler

if TYPE_CHECKING:
    from tend.context import AppContext

PERIODIC = [Periodic("approvals.expire", every=60.0)]


@asynccontextmanager
async def run_jobs(context: AppContext) -> AsyncIterator[None]:
    """Run the embedded job runner (and the scheduler) while the server runs.

    Args:
        context: The app context.

    Yields:
        Control while the server runs.
    """
    settings = context.settings
    runner = InProcessRunner(
        context.jobs,
        context,
        concurrency=settings.jobs_concurrency,
        heartbeat=settings.job_heartbeat,
    )
    context.jobs.backend = runner
    await runner.start()
    scheduler = Scheduler(context.jobs, runner.name, PERIODIC) if settings.scheduler else None
    if scheduler is not None:
        scheduler.start()
    try:
        yield
    finally:
        if scheduler is not None:
            await scheduler.stop()
        await runner.stop()
        context.jobs.backend = None
