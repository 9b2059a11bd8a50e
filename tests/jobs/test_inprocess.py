"""What only the embedded runner does: crash recovery at start, the scheduler, the service.

The job behaviour every backend shares (lifecycle, cancel, events, idempotency, restarts mid-job)
is in ``test_job_suite.py``, which runs on this backend too.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import select

from tend.auth.models import Role
from tend.db import utcnow
from tend.jobs.bus import EventBus
from tend.jobs.inprocess import InProcessRunner
from tend.jobs.kinds import JobContext, job_kind
from tend.jobs.models import Job, JobEvent
from tend.jobs.scheduler import Periodic, Scheduler
from tend.jobs.service import JobService
from tests.conftest import Harness, start_harness


async def wait_state(
    h: Harness, headers: dict[str, str], job_id: str, *states: str, within: float = 20
) -> dict:
    deadline = time.monotonic() + within
    while True:
        job = (await h.client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job stuck in {job['state']}"
        await asyncio.sleep(0.05)


@job_kind("test.crashed-once", idempotent=False, description="a job that must never run twice")
async def run_once(ctx: JobContext) -> dict:
    return {}


async def quiet(h: Harness) -> None:
    """Stop the fixture server's own runner, so only the server under test takes jobs."""
    backend = h.context.jobs.backend
    assert backend is not None
    await backend.stop()  # type: ignore[attr-defined]


def stale_job(job_id: str, kind: str, worker: str = "dead:1") -> Job:
    """A job a crashed process left ``running`` five minutes ago."""
    stale = utcnow() - timedelta(minutes=5)
    return Job(
        id=job_id,
        kind=kind,
        params={},
        queue="default",
        state="running",
        requested_by="admin",
        attempts=1,
        max_attempts=3,
        worker=worker,
        created_at=stale,
        started_at=stale,
        heartbeat_at=stale,
    )


async def test_async_change_still_needs_approval(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    response = await harness.client.post(
        "/api/v1/runs",
        json={"argv": ["touch", "/tmp/never"], "targets": ["local"], "async": True},
        headers=operator,
    )
    assert response.status_code == 202
    assert "approval_id" in response.json()


async def test_enqueueing_checks_the_kind_and_needs_an_admin(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    for bad in (
        {"kind": "run"},
        {"kind": "nope"},
        {"kind": "noop", "extra": 1},
        {"kind": "noop", "queue": "Bad Queue"},
    ):
        response = await harness.client.post("/api/v1/jobs", json=bad, headers=admin)
        assert response.status_code == 422, (bad, response.text)
    viewer = await harness.role_headers(Role.VIEWER)
    operator = await harness.role_headers(Role.OPERATOR)
    for headers in (viewer, operator):
        response = await harness.client.post("/api/v1/jobs", json={"kind": "noop"}, headers=headers)
        assert response.status_code == 403


async def test_restart_settles_jobs_a_crash_left_running(harness: Harness) -> None:
    """Jobs left 'running' by a dead process: idempotent ones retry, others fail with a reason."""
    context = harness.context
    await quiet(harness)
    async with context.database.session() as session:
        for job_id, kind in (("crashed-once", "test.crashed-once"), ("crashed-noop", "noop")):
            session.add(stale_job(job_id, kind))
            session.add(JobEvent(job_id=job_id, seq=1, type="state", data={"state": "running"}))
    # A second server on the same database starts (the restart) and recovers them.
    async with start_harness(context.settings, first_start=False) as restarted:
        admin = await restarted.role_headers(Role.ADMIN)
        failed = await wait_state(restarted, admin, "crashed-once", "failed")
        assert "not idempotent" in failed["error"]
        retried = await wait_state(restarted, admin, "crashed-noop", "succeeded")
        assert retried["attempts"] == 2


async def test_a_crashed_job_is_settled_once_when_processes_recover_it_together(
    harness: Harness,
) -> None:
    """Every runner (API or worker) recovers stale jobs; together they must requeue it once."""
    await quiet(harness)
    jobs = harness.context.jobs
    async with harness.context.database.session() as session:
        session.add(stale_job("crashed", "noop"))
        session.add(JobEvent(job_id="crashed", seq=1, type="state", data={"state": "running"}))
    runners = [InProcessRunner(jobs, harness.context, heartbeat=0.5) for _ in range(3)]
    await asyncio.gather(*(r.recover() for r in runners))
    async with harness.context.database.session() as session:
        states = [
            data["state"]
            for (data,) in await session.execute(
                select(JobEvent.data)
                .where(JobEvent.job_id == "crashed", JobEvent.type == "state")
                .order_by(JobEvent.seq)
            )
        ]
    assert states == ["running", "queued"], "the crashed job was settled more than once"
    # A runner that saw it stale before another claimed it leaves the new attempt alone.
    assert await jobs.mark_running("crashed", "alive:2", utcnow())
    await runners[0].recover()  # nothing stale any more
    late = await jobs.finish("crashed", "queued", error="late settle", only_if_worker="dead:1")
    assert late is False
    job = await jobs.get("crashed")
    assert (job.state, job.worker) == ("running", "alive:2")


@job_kind("test.gated", idempotent=True, description="runs until its gate opens")
async def gated(ctx: JobContext) -> dict:
    await GATES[ctx.params["gate"]].wait()
    return {"done": True}


GATES: dict[str, asyncio.Event] = {}  # made inside each test: an Event belongs to one loop


async def test_a_runner_never_settles_its_own_live_job_when_its_heartbeat_is_late(
    harness: Harness,
) -> None:
    """A busy loop or a locked SQLite may delay a heartbeat; the job still runs here."""
    gate = GATES["late-heartbeat"] = asyncio.Event()
    runner = harness.context.jobs.backend
    assert isinstance(runner, InProcessRunner)
    admin = await harness.role_headers(Role.ADMIN)
    job = await harness.context.jobs.enqueue(
        "test.gated", {"gate": "late-heartbeat"}, requested_by="admin"
    )
    await wait_state(harness, admin, job.id, "running")
    async with harness.context.database.session() as session:
        row = await session.get(Job, job.id)
        assert row is not None
        row.heartbeat_at = utcnow() - timedelta(minutes=5)  # looks stale to everyone
    assert await runner.recover() == 0
    assert (await harness.context.jobs.get(job.id)).state == "running"
    gate.set()
    done = await wait_state(harness, admin, job.id, "succeeded")
    assert done["attempts"] == 1


async def test_scheduler_has_one_owner_and_enqueues_each_period_once(harness: Harness) -> None:
    jobs = JobService(harness.context.database, EventBus())
    periodic = [Periodic("noop", every=3600)]
    first = Scheduler(jobs, "node-a", periodic, tick=5, lease="test-scheduler")
    second = Scheduler(jobs, "node-b", periodic, tick=5, lease="test-scheduler")
    assert await first.run_once() == 1
    assert await second.run_once() == 0
    assert first.is_owner
    assert not second.is_owner
    assert await first.run_once() == 1  # renewing; the same period is not enqueued twice
    async with harness.context.database.session() as session:
        noops = (
            (await session.execute(select(Job).where(Job.idempotency_key.like("periodic:noop:%"))))
            .scalars()
            .all()
        )
    assert len(noops) == 1
    assert noops[0].idempotency_key.startswith("periodic:noop:")


async def test_queued_job_cancels_at_once(harness: Harness) -> None:
    jobs = JobService(harness.context.database, EventBus())  # no backend: nothing runs it
    job = await jobs.enqueue("noop", {}, requested_by="admin")
    cancelled = await jobs.cancel(job.id, by="admin")
    assert cancelled.state == "cancelled"
    events = [e.type async for e in jobs.events(job.id)]
    assert events == ["state", "state"]


async def test_many_concurrent_events_of_one_job_all_land_in_order(harness: Harness) -> None:
    """A fan-out reports many hosts at once; every event must be kept, numbered without gaps."""
    await quiet(harness)  # nobody else writes this job's events
    jobs = JobService(harness.context.database, EventBus())
    job = await jobs.enqueue("noop", {}, requested_by="admin")
    seqs = await asyncio.gather(
        *(jobs.record(job.id, "host", {"host": f"h{i}"}) for i in range(200))
    )
    assert sorted(seqs) == list(range(2, 202))
    async with harness.context.database.session() as session:
        stored = (
            (await session.execute(select(JobEvent.seq).where(JobEvent.job_id == job.id)))
            .scalars()
            .all()
        )
    assert sorted(stored) == list(range(1, 202))
