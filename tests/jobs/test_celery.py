"""Jobs on Celery with real worker processes, on Redis and on RabbitMQ, state in PostgreSQL.

Each test has a fresh PostgreSQL schema and its own broker queue (see ``conftest.py``): runs on
host ``local`` are routed to it by ``TEND_QUEUE_ROUTES``, other jobs name it, and the workers
consume only it, so no test (or concurrent session) sees another's messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from kombu.transport.redis import Channel as RedisChannel
from sqlalchemy import select, update

from tend.auth.models import Role
from tend.db import utcnow
from tend.jobs.celery_backend import CeleryBackend, make_celery
from tend.jobs.models import Job
from tests.conftest import make_settings, start_harness
from tests.jobs.celery_support import (
    DEAD_BROKERS,
    REDIS_URL,
    CeleryCase,
    pids_matching,
    require_service,
    wait_job,
    worker_pid,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def marker_lines(case: CeleryCase) -> int:
    return len(case.marker.read_text().splitlines()) if case.marker.exists() else 0


def event_kinds(sse: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in sse.splitlines() if line.startswith("event: ")]


async def wait_process(pattern: str, *, alive: bool, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while bool(pids_matching(pattern)) != alive:
        what = "never started" if alive else "survived"
        assert time.monotonic() < deadline, f"{pattern!r} {what}"
        await asyncio.sleep(0.05)


async def test_jobs_run_on_celery_workers(celery_case: CeleryCase) -> None:
    case = celery_case
    worker = case.spawn_worker()
    async with start_harness(make_settings(case.tmp_path, **case.fields)) as h:
        await case.ready(worker)
        operator = await h.role_headers(Role.OPERATOR)
        accepted = await h.client.post(
            "/api/v1/runs",
            json={"argv": ["echo", "on a worker"], "targets": ["local"], "async": True},
            headers=operator,
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        job = await wait_job(h, operator, job_id, "succeeded", "failed")
        assert job["state"] == "succeeded", job
        assert job["queue"] == case.queue
        assert worker_pid(job) == worker.pid != os.getpid()
        assert job["result"]["ok"] is True
        assert job["result"]["results"][0]["stdout"] == "on a worker\n"
        events = await h.client.get(f"/api/v1/jobs/{job_id}/events", headers=operator)
        kinds = event_kinds(events.text)
        assert kinds[:2] == ["state", "state"]
        assert "host" in kinds
        assert kinds[-1] == "state"
        assert '"state":"succeeded"' in events.text

        admin = await h.role_headers(Role.ADMIN)
        noop = await h.client.post(
            "/api/v1/jobs", json={"kind": "noop", "queue": case.queue}, headers=admin
        )
        assert noop.status_code == 202, noop.text
        done = await wait_job(h, admin, noop.json()["job_id"], "succeeded", "failed")
        assert done["state"] == "succeeded"
        assert worker_pid(done) == worker.pid
        finished = await h.client.post(f"/api/v1/jobs/{done['id']}/cancel", headers=admin)
        assert finished.status_code == 409

        # A queue nobody consumes keeps its job queued: cancelling it is immediate.
        idle = f"{case.queue}.idle"
        case.queues.add(idle)
        waiting = await h.client.post(
            "/api/v1/jobs", json={"kind": "noop", "queue": idle}, headers=admin
        )
        assert waiting.status_code == 202, waiting.text
        waiting_id = waiting.json()["job_id"]
        cancelled = await h.client.post(f"/api/v1/jobs/{waiting_id}/cancel", headers=admin)
        assert cancelled.status_code == 200
        assert cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["worker"] is None
        again = await h.client.post(f"/api/v1/jobs/{waiting_id}/cancel", headers=admin)
        assert again.status_code == 409

        assert (await h.client.get("/api/v1/jobs/nope", headers=admin)).status_code == 404
        assert (await h.client.get("/api/v1/jobs/nope/events", headers=admin)).status_code == 404
        assert (await h.client.post("/api/v1/jobs/nope/cancel", headers=admin)).status_code == 404


def redis_restore_period(case: CeleryCase) -> float:
    """Seconds between the sweeps that redeliver unacked Redis messages, as tend configures it."""
    options = make_celery(make_settings(case.tmp_path, **case.fields)).conf.broker_transport_options
    interval = options.get("unacked_restore_interval", RedisChannel.unacked_restore_interval)
    throttle = options.get("unacked_restore_throttle", RedisChannel.unacked_restore_throttle)
    return float(interval * throttle)


async def test_killed_worker_job_is_redelivered_and_its_side_effect_happens_once(
    celery_case: CeleryCase,
) -> None:
    case = celery_case
    if case.broker == "redis":
        # Redis redelivers a dead worker's message at the next sweep for unacked messages;
        # tend sets the sweep to half the visibility timeout (kombu's default is ~100 s).
        assert redis_restore_period(case) <= 15
    workers = [case.spawn_worker(), case.spawn_worker()]
    async with start_harness(make_settings(case.tmp_path, **case.fields)) as h:
        await case.ready(*workers)
        operator = await h.role_headers(Role.OPERATOR)
        accepted = await h.client.post(
            "/api/v1/runs",
            json={"argv": [str(case.script)], "targets": ["local"], "timeout": 120, "async": True},
            headers=operator,
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        deadline = time.monotonic() + 20
        while marker_lines(case) < 1:
            assert time.monotonic() < deadline, "the script never ran"
            await asyncio.sleep(0.05)
        job = await wait_job(h, operator, job_id, "running")
        victim = next(w for w in workers if w.pid == worker_pid(job))
        os.kill(victim.pid, signal.SIGKILL)
        victim.popen.wait(5)
        for pid in pids_matching(f"sleep {case.token}"):  # the orphaned command
            os.kill(pid, signal.SIGKILL)
        done = await wait_job(h, operator, job_id, "succeeded", "failed", within=45)
        assert done["state"] == "succeeded", done
        survivor = next(w for w in workers if w is not victim)
        assert worker_pid(done) == survivor.pid
        assert done["attempts"] == 2
        [result] = done["result"]["results"]
        assert result["host"] == "local"
        assert result["error_kind"] == "interrupted"
        assert marker_lines(case) == 1, "the command ran again on redelivery"


async def test_events_stream_live_through_another_api_process(celery_case: CeleryCase) -> None:
    case = celery_case
    require_service("redis", REDIS_URL)
    case.fields["redis_url"] = REDIS_URL  # live events across the API processes
    worker = case.spawn_worker()
    async with start_harness(make_settings(case.tmp_path, **case.fields)) as a:
        server = case.spawn_server()  # API B: a real server, so SSE really streams
        await case.ready(worker, server)
        operator = a.jwt(await a.user(Role.OPERATOR))
        accepted = await a.client.post(
            "/api/v1/runs",
            json={"argv": ["sleep", "2.5"], "targets": ["local"], "async": True},
            headers=operator,
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        received: list[tuple[float, dict[str, str]]] = []
        assert server.url is not None
        async with (
            asyncio.timeout(30),
            httpx.AsyncClient(base_url=server.url, timeout=30) as b,
            b.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=operator) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line:
                    key, _, value = line.partition(": ")
                    event[key] = value
                elif event:
                    received.append((time.time(), event))
                    event = {}
        job = await wait_job(a, operator, job_id, "succeeded", "failed")
    assert job["state"] == "succeeded", job
    assert worker_pid(job) == worker.pid
    seqs = [int(e["id"]) for _, e in received]
    assert seqs == list(range(1, len(seqs) + 1)), "events out of order or missing"
    kinds = [e["event"] for _, e in received]
    states = [json.loads(e["data"])["state"] for _, e in received if e["event"] == "state"]
    assert states[0] == "queued"
    assert "running" in states
    assert states[-1] == "succeeded"
    assert kinds[-1] == "state"
    assert kinds.index("host_started") < kinds.index("host")
    finished_at = datetime.fromisoformat(job["finished_at"]).timestamp()
    started_seen = next(at for at, e in received if e["event"] == "host_started")
    assert started_seen < finished_at - 1.5, "events were not streamed while the job ran"


async def test_cancel_stops_the_command_on_the_worker(celery_case: CeleryCase) -> None:
    case = celery_case
    worker = case.spawn_worker()
    async with start_harness(make_settings(case.tmp_path, **case.fields)) as h:
        await case.ready(worker)
        operator = await h.role_headers(Role.OPERATOR)
        accepted = await h.client.post(
            "/api/v1/runs",
            json={
                "argv": ["sleep", case.token],
                "targets": ["local"],
                "timeout": 120,
                "async": True,
            },
            headers=operator,
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        await wait_job(h, operator, job_id, "running")
        await wait_process(f"sleep {case.token}", alive=True)
        cancelled = await h.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=operator)
        assert cancelled.status_code == 200, cancelled.text
        job = await wait_job(h, operator, job_id, "cancelled", "failed", "succeeded", within=10)
        assert job["state"] == "cancelled", job
        assert job["error"] == "cancelled"
        assert worker_pid(job) == worker.pid
        await wait_process(f"sleep {case.token}", alive=False)


async def test_broker_down_is_503_and_the_job_is_sent_later(celery_case: CeleryCase) -> None:
    case = celery_case
    worker = case.spawn_worker()  # on the real broker, for when it "comes back"
    down = {**case.fields, "broker_url": DEAD_BROKERS[case.broker]}
    async with start_harness(make_settings(case.tmp_path, **down)) as h:
        operator = await h.role_headers(Role.OPERATOR)
        started = time.monotonic()
        refused = await h.client.post(
            "/api/v1/runs",
            json={"argv": ["echo", "later"], "targets": ["local"], "async": True},
            headers=operator,
        )
        assert time.monotonic() - started < 15, "a dead broker must fail fast"
        assert refused.status_code == 503, refused.text
        body: dict[str, Any] = refused.json()
        assert body["error"] == "ServiceUnavailable"
        assert "broker" in body["detail"]
        assert (await h.client.get("/api/v1/hosts", headers=operator)).status_code == 200
        async with h.context.database.session() as session:
            [job] = (await session.execute(select(Job))).scalars().all()
            assert job.state == "queued"
            assert job.queue == case.queue
            assert job.id in body["detail"]
            # The re-dispatcher only re-sends jobs that have waited a while.
            await session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(created_at=utcnow() - timedelta(seconds=60))
            )
        back = CeleryBackend(make_settings(case.tmp_path, **case.fields), h.context.jobs)
        try:
            assert await back.redispatch() == 1
        finally:
            back.app.close()
        await case.ready(worker)
        done = await wait_job(h, operator, job.id, "succeeded", "failed")
        assert done["state"] == "succeeded", done
        assert worker_pid(done) == worker.pid
        assert done["result"]["results"][0]["stdout"] == "later\n"


async def test_a_large_run_is_split_into_parts_across_workers(celery_case: CeleryCase) -> None:
    case = celery_case
    case.fields["run_part_hosts"] = 2
    workers = [case.spawn_worker(), case.spawn_worker()]
    async with start_harness(make_settings(case.tmp_path, **case.fields)) as h:
        await case.ready(*workers)
        admin = await h.role_headers(Role.ADMIN)
        for index in range(6):
            created = await h.client.post(
                "/api/v1/hosts",
                json={"name": f"part-{index}", "transport": "local", "tags": ["local"]},
                headers=admin,
            )
            assert created.status_code == 201
        accepted = await h.client.post(
            "/api/v1/runs",
            json={"argv": ["echo", "split"], "targets": ["tag:local"], "async": True},
            headers=admin,
        )
        job_id = accepted.json()["job_id"]
        # Parts are sent to the broker by the worker that splits the run, at once (the API's
        # re-send loop only picks up jobs older than 30 s, so this bound proves it).
        job = await wait_job(h, admin, job_id, "succeeded", "failed", within=25)
        assert job["state"] == "succeeded", job
        results = job["result"]["results"]
        assert sorted(r["host"] for r in results) == sorted(
            ["local", *(f"part-{i}" for i in range(6))]
        )
        assert all(r["status"] == "ok" and r["stdout"] == "split\n" for r in results)
        parts = [
            j
            for j in (await h.client.get("/api/v1/jobs", headers=admin)).json()
            if j["params"].get("part_of") == job_id
        ]
        assert len(parts) == 4  # 7 hosts in parts of at most 2
        assert all(p["state"] == "succeeded" for p in parts)
        assert {worker_pid(p) for p in parts} <= {w.pid for w in workers}
        events = await h.client.get(f"/api/v1/jobs/{job_id}/events", headers=admin)
        kinds = event_kinds(events.text)
        assert "split" in kinds
        assert kinds.count("host") == 7
