"""Background jobs on the embedded runner: async runs, events, cancel, crash recovery, scheduler."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from datetime import timedelta

from sqlalchemy import select

from tend.auth.models import Role
from tend.db import utcnow
from tend.jobs.bus import EventBus
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


@job_kind("test.once", idempotent=False, description="a job that must never run twice")
async def run_once(ctx: JobContext) -> dict:
    return {}


async def quiet(h: Harness) -> None:
    """Stop the fixture server's own runner, so only the server under test takes jobs."""
    backend = h.context.jobs.backend
    assert backend is not None
    await backend.stop()  # type: ignore[attr-defined]


def process_alive(pattern: str) -> bool:
    # "[x]yz" matches the process but never pgrep's own command line.
    found = subprocess.run(
        ["pgrep", "-f", f"[{pattern[0]}]{pattern[1:]}"], check=False, capture_output=True
    )
    return found.returncode == 0


async def test_async_read_runs_as_a_job_with_events(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    accepted = await harness.client.post(
        "/api/v1/runs",
        json={"argv": ["echo", "in the background"], "targets": ["local"], "async": True},
        headers=operator,
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    job = await wait_state(harness, operator, job_id, "succeeded")
    assert job["kind"] == "run"
    assert job["progress"] == 1.0
    assert job["result"]["ok"] is True
    assert job["result"]["results"][0]["stdout"] == "in the background\n"
    events = await harness.client.get(f"/api/v1/jobs/{job_id}/events", headers=operator)
    assert events.headers["content-type"].startswith("text/event-stream")
    kinds = [
        line.split(": ", 1)[1] for line in events.text.splitlines() if line.startswith("event: ")
    ]
    assert kinds[:2] == ["state", "state"]
    assert "host" in kinds
    assert kinds[-1] == "state"
    assert '"state":"succeeded"' in events.text
    resumed = await harness.client.get(
        f"/api/v1/jobs/{job_id}/events", headers={**operator, "Last-Event-ID": "2"}
    )
    assert "id: 1\n" not in resumed.text
    assert "id: 3\n" in resumed.text
    audit = await harness.client.get(
        "/api/v1/audit", params={"event": "run_result"}, headers=operator
    )
    assert audit.json()[0]["run_id"] == job_id


async def test_async_change_still_needs_approval(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    response = await harness.client.post(
        "/api/v1/runs",
        json={"argv": ["touch", "/tmp/never"], "targets": ["local"], "async": True},
        headers=operator,
    )
    assert response.status_code == 202
    assert "approval_id" in response.json()


async def test_cancel_stops_the_running_command(harness: Harness) -> None:
    operator = await harness.role_headers(Role.OPERATOR)
    marker = f"30.{uuid.uuid4().int % 10**9:09d}"
    accepted = await harness.client.post(
        "/api/v1/runs",
        json={"argv": ["sleep", marker], "targets": ["local"], "timeout": 120, "async": True},
        headers=operator,
    )
    job_id = accepted.json()["job_id"]
    await wait_state(harness, operator, job_id, "running")
    deadline = time.monotonic() + 10
    while not process_alive(f"sleep {marker}"):
        assert time.monotonic() < deadline, "the command never started"
        await asyncio.sleep(0.05)
    cancelled = await harness.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=operator)
    assert cancelled.status_code == 200
    job = await wait_state(harness, operator, job_id, "cancelled")
    assert job["error"] == "cancelled"
    deadline = time.monotonic() + 10
    while process_alive(f"sleep {marker}"):
        assert time.monotonic() < deadline, "the command survived the cancel"
        await asyncio.sleep(0.1)
    again = await harness.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=operator)
    assert again.status_code == 409
    missing = await harness.client.post("/api/v1/jobs/nope/cancel", headers=operator)
    assert missing.status_code == 404


async def test_admin_enqueues_allowed_kinds_with_idempotency(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    body = {"kind": "noop", "idempotency_key": "once-only"}
    first = await harness.client.post("/api/v1/jobs", json=body, headers=admin)
    second = await harness.client.post("/api/v1/jobs", json=body, headers=admin)
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    await wait_state(harness, admin, first.json()["job_id"], "succeeded")
    for bad in (
        {"kind": "run"},
        {"kind": "nope"},
        {"kind": "noop", "extra": 1},
        {"kind": "noop", "queue": "Bad Queue"},
    ):
        assert (
            await harness.client.post("/api/v1/jobs", json=bad, headers=admin)
        ).status_code == 422
    viewer = await harness.role_headers(Role.VIEWER)
    assert (await harness.client.post("/api/v1/jobs", json=body, headers=viewer)).status_code == 403


async def test_viewers_see_only_their_own_jobs(harness: Harness) -> None:
    alice = harness.jwt(await harness.user(Role.VIEWER, name="alice"))
    bob = harness.jwt(await harness.user(Role.VIEWER, name="bob"))
    operator = await harness.role_headers(Role.OPERATOR)
    accepted = await harness.client.post(
        "/api/v1/runs",
        json={"argv": ["uptime"], "targets": ["local"], "async": True},
        headers=alice,
    )
    job_id = accepted.json()["job_id"]
    await wait_state(harness, alice, job_id, "succeeded")
    assert [j["id"] for j in (await harness.client.get("/api/v1/jobs", headers=alice)).json()] == [
        job_id
    ]
    assert (await harness.client.get("/api/v1/jobs", headers=bob)).json() == []
    assert (await harness.client.get(f"/api/v1/jobs/{job_id}", headers=bob)).status_code == 404
    assert (await harness.client.get(f"/api/v1/jobs/{job_id}", headers=operator)).status_code == 200
    listed = await harness.client.get("/api/v1/jobs", params={"state": "bogus"}, headers=operator)
    assert listed.status_code == 422


async def test_restart_settles_jobs_a_crash_left_running(harness: Harness) -> None:
    """Jobs left 'running' by a dead process: idempotent ones retry, others fail with a reason."""
    context = harness.context
    await quiet(harness)
    stale = utcnow() - timedelta(minutes=5)
    async with context.database.session() as session:
        for job_id, kind in (("crashed-once", "test.once"), ("crashed-noop", "noop")):
            session.add(
                Job(
                    id=job_id,
                    kind=kind,
                    params={},
                    queue="default",
                    state="running",
                    requested_by="admin",
                    attempts=1,
                    max_attempts=3,
                    worker="dead:1",
                    created_at=stale,
                    started_at=stale,
                    heartbeat_at=stale,
                )
            )
            session.add(JobEvent(job_id=job_id, seq=1, type="state", data={"state": "running"}))
    # A second server on the same database starts (the restart) and recovers them.
    async with start_harness(context.settings, first_start=False) as restarted:
        admin = await restarted.role_headers(Role.ADMIN)
        failed = await wait_state(restarted, admin, "crashed-once", "failed")
        assert "not idempotent" in failed["error"]
        retried = await wait_state(restarted, admin, "crashed-noop", "succeeded")
        assert retried["attempts"] == 2


async def test_stopping_the_server_mid_job_leaves_nothing_running(harness: Harness) -> None:
    settings = harness.context.settings
    await quiet(harness)
    async with start_harness(settings, first_start=False) as second:
        operator = await second.role_headers(Role.OPERATOR)
        marker = f"30.{uuid.uuid4().int % 10**9:09d}"
        accepted = await second.client.post(
            "/api/v1/runs",
            json={"argv": ["sleep", marker], "targets": ["local"], "timeout": 60, "async": True},
            headers=operator,
        )
        job_id = accepted.json()["job_id"]
        await wait_state(second, operator, job_id, "running")
        deadline = time.monotonic() + 10
        while not process_alive(f"sleep {marker}"):  # stop only once the command runs
            assert time.monotonic() < deadline, "the command never started"
            await asyncio.sleep(0.05)
    async with harness.context.database.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        assert job.state == "queued", "a retryable job goes back to the queue, never stays running"
        assert "the server stopped" in (job.error or "")
    assert not process_alive(f"sleep {marker}"), "stopping the server stops its commands"
    # The next start finishes it without running the host it had already started.
    async with start_harness(settings, first_start=False) as third:
        operator = third.jwt(await third.user(Role.OPERATOR, name="late-operator"))
        done = await wait_state(third, operator, job_id, "succeeded")
        [result] = done["result"]["results"]
        assert result["error_kind"] == "interrupted"
        assert done["attempts"] == 2


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


async def test_unknown_job_is_404(harness: Harness) -> None:
    viewer = await harness.role_headers(Role.VIEWER)
    assert (await harness.client.get("/api/v1/jobs/nope", headers=viewer)).status_code == 404
    events = await harness.client.get("/api/v1/jobs/nope/events", headers=viewer)
    assert events.status_code == 404


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
