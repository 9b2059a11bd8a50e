"""The job kinds tend ships: approval expiry, job pruning, a no-op (fleet runs: ``fleet_run``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from tend.db import utcnow
from tend.execution.approvals import expire_stale
from tend.jobs import fleet_run  # noqa: F401 - registers the run kind
from tend.jobs.kinds import JobContext, job_kind
from tend.jobs.models import FINISHED_STATES, Job, JobEvent

SYSTEM_REQUESTER = "tend"


@job_kind("noop", idempotent=True, description="does nothing (tests, benchmarks)", api=True)
async def noop(ctx: JobContext) -> dict[str, Any]:
    """Return at once."""
    return {}


@job_kind("approvals.expire", idempotent=True, description="expire stale approvals", api=True)
async def expire_approvals(ctx: JobContext) -> dict[str, Any]:
    """Mark pending approvals past their expiry as expired (and audit each)."""
    return {"expired": await expire_stale(ctx.app.execution)}


@job_kind(
    "jobs.prune", idempotent=True, description="delete finished jobs past retention", api=True
)
async def prune_jobs(ctx: JobContext) -> dict[str, Any]:
    """Delete finished jobs (and their events) older than the retention settings.

    tend's own periodic jobs (collection rollups, alert evaluation, ...) are kept for
    ``TEND_PERIODIC_JOB_RETENTION_DAYS``; everything else for ``TEND_JOB_RETENTION_DAYS``.
    """
    settings = ctx.app.settings
    now = utcnow()
    system_before = now - timedelta(days=settings.periodic_job_retention_days)
    user_before = now - timedelta(days=settings.job_retention_days)
    stale = (
        select(Job.id)
        .where(Job.state.in_(FINISHED_STATES), Job.finished_at.is_not(None))
        .where(
            ((Job.requested_by == SYSTEM_REQUESTER) & (Job.finished_at < system_before))
            | (Job.finished_at < user_before)
        )
    )
    async with ctx.app.database.session() as session:
        ids = list((await session.scalars(stale)).all())
        for start in range(0, len(ids), 500):  # bounded statements on both backends
            chunk = ids[start : start + 500]
            await session.execute(delete(JobEvent).where(JobEvent.job_id.in_(chunk)))
            await session.execute(delete(Job).where(Job.id.in_(chunk)))
    return {"deleted": len(ids)}
