"""What only the Celery backend does: a dead broker, parts across workers, idle queues, replicas.

These run on the package's worker pools (``conftest.py``), on Redis and on RabbitMQ. The job
behaviour every backend shares is in ``test_job_suite.py``, which runs on Celery too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tend.auth.models import Role
from tend.db import utcnow
from tend.jobs.celery_backend import CeleryBackend
from tend.jobs.models import Job
from tests.conftest import start_harness
from tests.jobs.celery_support import DEAD_BROKERS
from tests.jobs.envs import JobEnv, parse_sse, wait_job, worker_pid

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_broker_down_is_503_and_the_job_is_sent_later(celery_env: JobEnv) -> None:
    env = celery_env
    down = env.settings(broker_url=DEAD_BROKERS[env.pool.broker])
    async with start_harness(down, first_start=False) as h:
        name = f"operator-{uuid.uuid4().hex[:8]}"
        operator = await env.headers(h, Role.OPERATOR, name=name)
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
            [job] = (await session.execute(select(Job).where(Job.requested_by == name))).scalars()
            assert job.state == "queued"
            assert job.queue == env.queue
            assert job.id in body["detail"]
            # The re-dispatcher only re-sends jobs that have waited a while.
            await session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(created_at=utcnow() - timedelta(seconds=60))
            )
        back = CeleryBackend(env.settings(), h.context.jobs)
        try:
            assert await back.redispatch() >= 1
        finally:
            back.app.close()
        done = await wait_job(h, operator, job.id, "succeeded", "failed")
        assert done["state"] == "succeeded", done
        assert worker_pid(done) in env.runner_pids()
        assert done["result"]["results"][0]["stdout"] == "later\n"


async def test_a_job_on_a_queue_nobody_consumes_stays_queued_and_cancels_at_once(
    celery_env: JobEnv,
) -> None:
    env = celery_env
    idle = f"{env.queue}.idle"
    env.pool.queues.add(idle)  # deleted with the pool's queues
    async with env.api() as api:
        admin = await env.headers(api.h, Role.ADMIN)
        waiting = await api.h.client.post(
            "/api/v1/jobs", json={"kind": "noop", "queue": idle}, headers=admin
        )
        assert waiting.status_code == 202, waiting.text
        job_id = waiting.json()["job_id"]
        await asyncio.sleep(0.5)  # the workers would take it by now if they consumed its queue
        assert (await api.h.client.get(f"/api/v1/jobs/{job_id}", headers=admin)).json()[
            "state"
        ] == "queued"
        cancelled = await api.h.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=admin)
        assert cancelled.status_code == 200
        assert cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["worker"] is None
        again = await api.h.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=admin)
        assert again.status_code == 409


async def test_a_large_run_is_split_into_parts_across_workers(celery_env: JobEnv) -> None:
    env = celery_env  # the pool's workers split runs over more than 2 hosts
    tag = f"split-{uuid.uuid4().hex[:8]}"
    names = [f"{tag}-{index}" for index in range(5)]
    async with env.api() as api:
        h = api.h
        admin = await env.headers(h, Role.ADMIN)
        for name in names:
            created = await h.client.post(
                "/api/v1/hosts",
                json={"name": name, "transport": "local", "tags": ["local", tag]},
                headers=admin,
            )
            assert created.status_code == 201, created.text
        accepted = await h.client.post(
            "/api/v1/runs",
            json={"argv": ["echo", "split"], "targets": [f"tag:{tag}"], "async": True},
            headers=admin,
        )
        job_id = accepted.json()["job_id"]
        # Parts are sent to the broker by the worker that splits the run, at once (the API's
        # re-send loop only picks up jobs older than 30 s, so this bound proves it).
        job = await wait_job(h, admin, job_id, "succeeded", "failed", within=25)
        assert job["state"] == "succeeded", job
        results = job["result"]["results"]
        assert sorted(r["host"] for r in results) == names
        assert all(r["status"] == "ok" and r["stdout"] == "split\n" for r in results)
        parts = [
            j
            for j in (await h.client.get("/api/v1/jobs", headers=admin)).json()
            if j["params"].get("part_of") == job_id
        ]
        assert len(parts) == 3  # 5 hosts in parts of at most 2
        assert all(p["state"] == "succeeded" for p in parts)
        assert all(p["queue"] == env.queue for p in parts)
        assert {worker_pid(p) for p in parts} <= env.runner_pids()
        events = parse_sse(
            (await h.client.get(f"/api/v1/jobs/{job_id}/events", headers=admin)).text
        )
        kinds = [e["event"] for e in events]
        assert "split" in kinds
        assert kinds.count("host") == 5


@pytest.mark.parametrize("celery_pool", ["redis"], indirect=True)
async def test_events_stream_live_through_another_api_process(celery_env: JobEnv) -> None:
    """A job sent through API A runs on a worker; API B streams its events live (Redis)."""
    env = celery_env
    assert env.fields.get("redis_url"), "the Redis pool publishes events through Redis"
    gate = env.tmp_path / "gate"
    server = env.pool.spawn_server()  # API B: a real server, so SSE really streams
    try:
        async with env.api() as api:
            await env.pool.ready(server)
            admin = await env.headers(api.h, Role.ADMIN)
            accepted = await api.h.client.post(
                "/api/v1/jobs", json=env.job_body(gate=str(gate)), headers=admin
            )
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]
            received: list[dict[str, Any]] = []
            running_when_seen: dict[str, Any] = {}
            assert server.url is not None
            async with (
                asyncio.timeout(30),
                httpx.AsyncClient(base_url=server.url, timeout=30) as b,
                b.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=admin) as response,
            ):
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                block: list[str] = []
                async for line in response.aiter_lines():
                    if line:
                        block.append(line)
                        continue
                    [event] = parse_sse("\n".join(block))
                    block = []
                    received.append(event)
                    if event["event"] == "progress" and not gate.exists():
                        # The job waits for this gate: the stream is live while it runs.
                        running_when_seen = (
                            await api.h.client.get(f"/api/v1/jobs/{job_id}", headers=admin)
                        ).json()
                        gate.touch()
            job = await wait_job(api.h, admin, job_id, "succeeded", "failed")
    finally:
        server.stop()
    assert running_when_seen["state"] == "running", "no event reached API B while the job ran"
    assert job["state"] == "succeeded", job
    assert worker_pid(job) in env.runner_pids()
    assert [e["id"] for e in received] == list(range(1, len(received) + 1)), "events lost"
    assert [e["event"] for e in received] == ["state", "state", "progress", "progress", "state"]
    assert [e["data"]["state"] for e in received if e["event"] == "state"] == [
        "queued",
        "running",
        "succeeded",
    ]
