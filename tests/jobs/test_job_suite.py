"""The job behaviour every backend must show, run once per backend (``jobs_env``).

Backends: the embedded runner on SQLite and on PostgreSQL, and Celery with real worker
processes on Redis and on RabbitMQ (see ``conftest.py``). Each test talks to the HTTP API exactly
as a user would. ``test_job_suite_processes.py`` holds the rest of the suite: runners taken down
mid-job, and the CLI against a real HTTP server.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from tend.auth.models import Role
from tests.jobs.envs import (
    JobEnv,
    has_progress,
    parse_sse,
    states_of,
    wait_for,
    wait_job,
    wait_process,
    worker_pid,
)


async def test_a_job_goes_queued_running_succeeded_with_progress_and_result(
    jobs_env: JobEnv,
) -> None:
    env = jobs_env
    gate = env.tmp_path / "gate"
    async with env.api() as api:
        h = api.h
        name = f"admin-{uuid.uuid4().hex[:8]}"
        admin = await env.headers(h, Role.ADMIN, name=name)
        body = env.job_body(gate=str(gate), echo="hello")
        accepted = await h.client.post("/api/v1/jobs", json=body, headers=admin)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["state"] == "queued"
        job_id = accepted.json()["job_id"]

        running = await wait_job(h, admin, job_id, "running")
        assert running["kind"] == "test.work"
        assert running["requested_by"] == name
        assert running["queue"] == env.queue
        assert running["attempts"] == 1
        assert running["started_at"] is not None
        assert running["finished_at"] is None
        runner = worker_pid(running)
        assert runner in env.runner_pids()
        assert (runner != os.getpid()) is env.celery  # Celery jobs run in worker processes
        # Progress is reported while the job waits for its gate.
        await wait_for("progress 0.5", lambda: has_progress(h, admin, job_id, 0.5, "half way"))

        gate.touch()
        done = await wait_job(h, admin, job_id, "succeeded", "failed")
        assert done["state"] == "succeeded", done
        assert done["result"] == {"echo": "hello", "pid": runner}
        assert done["error"] is None
        assert done["progress"] == 1.0
        assert done["finished_at"] >= done["started_at"]

        events = parse_sse(
            (await h.client.get(f"/api/v1/jobs/{job_id}/events", headers=admin)).text
        )
        assert states_of(events) == ["queued", "running", "succeeded"]
        progress = [(e["data"]["progress"], e["data"]["message"]) for e in events[2:-1]]
        assert progress == [(0.5, "half way"), (0.9, "almost done")]


async def test_a_failing_job_fails_with_its_error(jobs_env: JobEnv) -> None:
    env = jobs_env
    async with env.api() as api:
        h = api.h
        admin = await env.headers(h, Role.ADMIN)
        accepted = await h.client.post(
            "/api/v1/jobs", json=env.job_body(fail="disk on fire"), headers=admin
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        failed = await wait_job(h, admin, job_id, "failed", "succeeded")
        assert failed["state"] == "failed", failed
        assert failed["error"] == "WorkFailed: disk on fire"
        assert failed["attempts"] == 1, "a job that failed is not retried"
        assert failed["progress"] == 0.5, "progress made before the failure is kept"
        assert failed["finished_at"] is not None
        events = parse_sse(
            (await h.client.get(f"/api/v1/jobs/{job_id}/events", headers=admin)).text
        )
        assert events[-1]["event"] == "state"
        assert events[-1]["data"] == {"state": "failed", "error": "WorkFailed: disk on fire"}


async def test_an_idempotency_key_returns_the_same_job_and_runs_it_once(jobs_env: JobEnv) -> None:
    env = jobs_env
    marker = env.tmp_path / "marker"
    key = f"nightly-{uuid.uuid4().hex}"
    async with env.api() as api:
        h = api.h
        admin = await env.headers(h, Role.ADMIN)
        body = {**env.job_body(marker=str(marker)), "idempotency_key": key}
        answers = await asyncio.gather(
            *(h.client.post("/api/v1/jobs", json=body, headers=admin) for _ in range(4))
        )
        assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
        [job_id] = {a.json()["job_id"] for a in answers}
        await wait_job(h, admin, job_id, "succeeded")
        again = await h.client.post("/api/v1/jobs", json=body, headers=admin)
        assert again.status_code == 202
        assert again.json() == {"job_id": job_id, "state": "succeeded"}
        other = await h.client.post(
            "/api/v1/jobs", json={**body, "idempotency_key": f"{key}-2"}, headers=admin
        )
        assert other.json()["job_id"] != job_id
        await wait_job(h, admin, other.json()["job_id"], "succeeded")
    assert [line.split()[0] for line in marker.read_text().splitlines()] == [
        job_id,
        other.json()["job_id"],
    ], "each job ran exactly once"


async def test_jobs_are_listed_filtered_and_visible_to_their_requester(jobs_env: JobEnv) -> None:
    env = jobs_env
    async with env.api() as api:
        h = api.h
        admin = await env.headers(h, Role.ADMIN)
        ok = (await h.client.post("/api/v1/jobs", json=env.job_body(), headers=admin)).json()
        bad = (
            await h.client.post("/api/v1/jobs", json=env.job_body(fail="no"), headers=admin)
        ).json()
        await wait_job(h, admin, ok["job_id"], "succeeded")
        await wait_job(h, admin, bad["job_id"], "failed")

        async def listed(headers: dict[str, str], **params: str) -> list[dict]:
            response = await h.client.get("/api/v1/jobs", params=params, headers=headers)
            assert response.status_code == 200, response.text
            return response.json()

        failed = await listed(admin, kind="test.work", state="failed")
        assert bad["job_id"] in [j["id"] for j in failed]
        assert ok["job_id"] not in [j["id"] for j in failed]
        assert {(j["kind"], j["state"]) for j in failed} == {("test.work", "failed")}
        succeeded = await listed(admin, kind="test.work", state="succeeded")
        assert ok["job_id"] in [j["id"] for j in succeeded]
        assert bad["job_id"] not in [j["id"] for j in succeeded]
        assert [j["id"] for j in await listed(admin, limit="1")] == [bad["job_id"]]  # newest
        bogus = await h.client.get("/api/v1/jobs", params={"state": "bogus"}, headers=admin)
        assert bogus.status_code == 422

        # Viewers see their own jobs only; operators and admins see everyone's.
        alice_name = f"alice-{uuid.uuid4().hex[:8]}"
        alice = await env.headers(h, Role.VIEWER, name=alice_name)
        bob = await env.headers(h, Role.VIEWER)
        operator = await env.headers(h, Role.OPERATOR)
        run = await h.client.post(
            "/api/v1/runs",
            json={"argv": ["uptime"], "targets": ["local"], "async": True},
            headers=alice,
        )
        assert run.status_code == 202, run.text
        run_id = run.json()["job_id"]
        await wait_job(h, alice, run_id, "succeeded")
        mine = await listed(alice)
        assert [j["id"] for j in mine] == [run_id]
        assert {j["requested_by"] for j in mine} == {alice_name}
        assert await listed(bob) == []
        assert (await h.client.get(f"/api/v1/jobs/{run_id}", headers=bob)).status_code == 404
        assert (await h.client.get(f"/api/v1/jobs/{run_id}", headers=operator)).status_code == 200
        assert run_id in [j["id"] for j in await listed(operator, kind="run")]


async def test_an_unknown_job_is_404(jobs_env: JobEnv) -> None:
    async with jobs_env.api() as api:
        h = api.h
        admin = await jobs_env.headers(h, Role.ADMIN)
        for method, path in (
            ("GET", "/api/v1/jobs/nope"),
            ("GET", "/api/v1/jobs/nope/events"),
            ("POST", "/api/v1/jobs/nope/cancel"),
        ):
            response = await h.client.request(method, path, headers=admin)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"] == "NotFound"


async def test_cancelling_running_jobs_stops_them_and_a_finished_job_is_409(
    jobs_env: JobEnv,
) -> None:
    env = jobs_env
    async with env.api() as api:
        h = api.h
        operator = await env.headers(h, Role.OPERATOR)
        admin = await env.headers(h, Role.ADMIN)
        run = await h.client.post(
            "/api/v1/runs",
            json={
                "argv": ["sleep", env.token],
                "targets": ["local"],
                "timeout": 120,
                "async": True,
            },
            headers=operator,
        )
        assert run.status_code == 202, run.text
        run_id = run.json()["job_id"]
        never = env.tmp_path / "never-opened"
        work = await h.client.post(
            "/api/v1/jobs", json=env.job_body(gate=str(never)), headers=admin
        )
        work_id = work.json()["job_id"]
        await wait_job(h, operator, run_id, "running")
        await wait_job(h, admin, work_id, "running")
        await wait_process(f"sleep {env.token}", alive=True)

        for job_id, headers in ((run_id, operator), (work_id, admin)):
            asked = await h.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers)
            assert asked.status_code == 200, asked.text
            assert asked.json()["state"] in ("running", "cancelled")
            assert asked.json()["cancel_requested"] is True
        for job_id in (run_id, work_id):
            job = await wait_job(h, admin, job_id, "cancelled", "failed", "succeeded", within=10)
            assert job["state"] == "cancelled", job
            assert job["error"] == "cancelled"
            assert worker_pid(job) in env.runner_pids()
        await wait_process(f"sleep {env.token}", alive=False)

        again = await h.client.post(f"/api/v1/jobs/{run_id}/cancel", headers=operator)
        assert again.status_code == 409
        assert again.json()["error"] == "Conflict"
        events = parse_sse(
            (await h.client.get(f"/api/v1/jobs/{run_id}/events", headers=operator)).text
        )
        assert "cancel_requested" in [e["event"] for e in events]
        assert states_of(events)[-1] == "cancelled"


async def test_the_event_stream_follows_a_job_to_its_final_state(jobs_env: JobEnv) -> None:
    env = jobs_env
    gate = env.tmp_path / "gate"
    async with env.api() as api:
        h = api.h
        admin = await env.headers(h, Role.ADMIN)
        job_id = (
            await h.client.post("/api/v1/jobs", json=env.job_body(gate=str(gate)), headers=admin)
        ).json()["job_id"]
        await wait_for("progress 0.5", lambda: has_progress(h, admin, job_id, 0.5, "half way"))
        # Opened while the job runs, the stream stays open until the job has finished.
        stream = asyncio.create_task(h.client.get(f"/api/v1/jobs/{job_id}/events", headers=admin))
        done, _ = await asyncio.wait([stream], timeout=0.3)
        assert not done, "the stream ended while the job was still running"
        gate.touch()
        response = await asyncio.wait_for(stream, 20)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.text)
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        assert [e["event"] for e in events] == ["state", "state", "progress", "progress", "state"]
        assert states_of(events) == ["queued", "running", "succeeded"]
        assert [e["data"]["progress"] for e in events if e["event"] == "progress"] == [0.5, 0.9]
        assert events[1]["data"]["worker"].split(":")[1] in {str(p) for p in env.runner_pids()}
        resumed = await h.client.get(
            f"/api/v1/jobs/{job_id}/events", headers={**admin, "Last-Event-ID": "3"}
        )
        assert parse_sse(resumed.text) == events[3:]


async def test_an_async_fleet_run_is_a_job_with_per_host_results(jobs_env: JobEnv) -> None:
    env = jobs_env
    other = f"local-{uuid.uuid4().hex[:8]}"
    async with env.api() as api:
        h = api.h
        admin = await env.headers(h, Role.ADMIN)
        created = await h.client.post(
            "/api/v1/hosts",
            json={"name": other, "transport": "local", "tags": ["local"]},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        operator = await env.headers(h, Role.OPERATOR)
        accepted = await h.client.post(
            "/api/v1/runs",
            json={
                "argv": ["echo", "in the background"],
                "targets": ["local", other],
                "async": True,
            },
            headers=operator,
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        job = await wait_job(h, operator, job_id, "succeeded", "failed")
        assert job["state"] == "succeeded", job
        assert job["kind"] == "run"
        assert job["queue"] == env.queue  # both hosts are tagged "local", routed to the queue
        assert worker_pid(job) in env.runner_pids()
        assert job["progress"] == 1.0
        assert job["result"]["ok"] is True
        assert job["result"]["run_id"] == job_id
        results = job["result"]["results"]
        assert [r["host"] for r in results] == sorted(["local", other])
        assert all(r["status"] == "ok" for r in results)
        assert [r["stdout"] for r in results] == ["in the background\n"] * 2

        events = parse_sse(
            (await h.client.get(f"/api/v1/jobs/{job_id}/events", headers=operator)).text
        )
        kinds = [e["event"] for e in events]
        assert kinds.count("host_started") == kinds.count("host") == 2
        assert max(i for i, k in enumerate(kinds) if k == "host_started") < kinds.index("host")
        assert states_of(events) == ["queued", "running", "succeeded"]
        progress = [e["data"]["progress"] for e in events if e["event"] == "progress"]
        assert progress == [0.0, 0.5, 1.0]
        audit = await h.client.get(
            "/api/v1/audit", params={"event": "run_result", "limit": 50}, headers=admin
        )
        assert sorted(a["host"] for a in audit.json() if a["run_id"] == job_id) == sorted(
            ["local", other]
        )
