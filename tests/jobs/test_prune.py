"""Finished jobs are pruned after their retention; running and recent ones stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from tend.db import utcnow
from tend.jobs.builtin import prune_jobs
from tend.jobs.kinds import JobContext
from tend.jobs.models import Job, JobEvent
from tests.conftest import Harness


async def _job(harness: Harness, requested_by: str, state: str, age_days: float | None) -> str:
    job = await harness.context.jobs.enqueue("noop", {}, requested_by=requested_by)
    finished = None if age_days is None else utcnow() - timedelta(days=age_days)
    async with harness.context.database.session() as session:
        await session.execute(
            update(Job).where(Job.id == job.id).values(state=state, finished_at=finished)
        )
        session.add(JobEvent(job_id=job.id, seq=1000, type="progress", data={}))
    return job.id


async def test_prune_deletes_only_finished_jobs_past_retention(harness: Harness) -> None:
    # The embedded runner would run these noops; stop it so the rows keep the states set here.
    runner: Any = harness.context.jobs.backend
    if runner is not None and hasattr(runner, "stop"):
        await runner.stop()
    old_user = await _job(harness, "alice", "succeeded", age_days=40)
    recent_user = await _job(harness, "alice", "failed", age_days=10)
    old_periodic = await _job(harness, "tend", "succeeded", age_days=2)
    recent_periodic = await _job(harness, "tend", "succeeded", age_days=0.1)
    old_running = await _job(harness, "alice", "running", age_days=None)

    async def report(event: str, data: dict[str, Any]) -> None:
        return None

    ctx = JobContext(job_id="prune", params={}, app=harness.context, report=report)
    assert await prune_jobs(ctx) == {"deleted": 2}

    async with harness.context.database.session() as session:
        left = set((await session.scalars(select(Job.id))).all())
        events = await session.scalar(
            select(func.count()).select_from(JobEvent).where(JobEvent.job_id.in_([old_user]))
        )
    assert {recent_user, recent_periodic, old_running} <= left
    assert old_user not in left
    assert old_periodic not in left
    assert events == 0
