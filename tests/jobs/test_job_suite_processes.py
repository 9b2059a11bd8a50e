"""The shared job suite, part 2: runners taken down mid-job, and the CLI over real HTTP.

Runs once per backend (``jobs_env``), like ``test_job_suite.py``. Only how a runner is taken
down differs: Celery workers are killed with SIGKILL, the embedded server is stopped and started
again (:meth:`tests.jobs.envs.Api.interrupt`).
"""

from __future__ import annotations

import asyncio
import json
import uuid

from typer.testing import CliRunner, Result

from tend.auth.models import Role
from tend.cli.main import app as cli_app
from tests.jobs.envs import (
    JobEnv,
    lines,
    parse_sse,
    states_of,
    wait_for,
    wait_job,
    wait_process,
    worker_pid,
)


async def test_a_job_interrupted_mid_run_is_retried_without_repeating_its_side_effect(
    jobs_env: JobEnv,
) -> None:
    """Celery: kill -9 the worker; embedded: restart the server. Nothing stays running."""
    env = jobs_env
    marker = env.tmp_path / "marker"
    once_marker = env.tmp_path / "once-marker"
    never = env.tmp_path / "never-opened"
    async with env.api() as api:
        admin = await env.headers(api.h, Role.ADMIN)
        run = await api.h.client.post(
            "/api/v1/runs",
            json={
                "argv": [str(env.script), str(marker), env.token],
                "targets": ["local"],
                "timeout": 120,
                "async": True,
            },
            headers=admin,
        )
        assert run.status_code == 202, run.text
        run_id = run.json()["job_id"]
        once = await api.h.client.post(
            "/api/v1/jobs",
            json=env.job_body("test.once", marker=str(once_marker), gate=str(never)),
            headers=admin,
        )
        once_id = once.json()["job_id"]
        await wait_for("the command ran", lambda: lines(marker) == 1)
        await wait_for("test.once ran", lambda: lines(once_marker) == 1)
        first = await wait_job(api.h, admin, run_id, "running")
        await wait_job(api.h, admin, once_id, "running")

        await api.interrupt([run_id, once_id])

        h = api.h
        done = await wait_job(h, admin, run_id, "succeeded", "failed", within=45)
        assert done["state"] == "succeeded", done
        assert done["attempts"] == 2
        assert done["worker"] != first["worker"]
        [result] = done["result"]["results"]
        assert result["host"] == "local"
        assert result["error_kind"] == "interrupted", "a started host is not run again"
        assert lines(marker) == 1, "the command ran again"
        events = parse_sse(
            (await h.client.get(f"/api/v1/jobs/{run_id}/events", headers=admin)).text
        )
        assert states_of(events) == ["queued", "running", "queued", "running", "succeeded"]
        requeued = [e["data"] for e in events if e["event"] == "state"][2]
        assert requeued["error"].startswith("interrupted (")
        assert requeued["error"].endswith("; retrying")

        failed = await wait_job(h, admin, once_id, "failed", "succeeded", within=45)
        assert failed["state"] == "failed", failed
        assert "not retried: kind 'test.once' is not idempotent" in failed["error"]
        assert lines(once_marker) == 1, "a job that is not idempotent ran twice"
        assert not [
            j
            for j in (await h.client.get("/api/v1/jobs", headers=admin)).json()
            if j["state"] == "running"
        ], "a job stayed running"
    await wait_process(f"sleep {env.token}", alive=False)


async def test_the_cli_runs_watches_lists_shows_and_cancels_jobs(jobs_env: JobEnv) -> None:
    env = jobs_env
    cli = CliRunner()
    base = env.cli_env()
    user = f"ops-{uuid.uuid4().hex[:8]}"

    async def tend(*args: str, token: str | None = None, stdin: str | None = None) -> Result:
        # In a thread: commands that open the database run their own event loop.
        extra = {"TEND_TOKEN": token} if token else {}
        env = {**base, **extra}
        return await asyncio.to_thread(cli.invoke, cli_app, list(args), input=stdin, env=env)

    created = await tend("users", "create", user, "--role", "admin", stdin="ops-password-1\n")
    assert created.exit_code == 0, created.output
    with env.http_server() as url:
        base["TEND_URL"] = url
        made = await tend("tokens", "create", "cli", "--username", user, stdin="ops-password-1\n")
        assert made.exit_code == 0, made.output
        token = made.stdout.strip().splitlines()[-1]

        queued = await tend("run", "-H", "local", "--async", "--", "echo", "later", token=token)
        assert queued.exit_code == 0, queued.output
        job_id = queued.stdout.strip().splitlines()[-1]
        assert "tend jobs watch" in queued.output
        watched = await tend("jobs", "watch", job_id, token=token)
        assert watched.exit_code == 0, watched.output
        assert f"job {job_id} succeeded" in watched.stdout
        assert "later" in watched.stdout  # the per-host results
        listed = json.loads(
            (await tend("jobs", "list", "--kind", "run", "--json", token=token)).stdout
        )
        assert job_id in [j["id"] for j in listed]
        succeeded = await tend("jobs", "list", "--state", "succeeded", token=token)
        assert job_id[:8] in succeeded.stdout
        detail = json.loads((await tend("jobs", "show", job_id, "--json", token=token)).stdout)
        assert (detail["kind"], detail["state"], detail["queue"]) == ("run", "succeeded", env.queue)
        assert worker_pid(detail) in env.runner_pids()
        late = await tend("jobs", "cancel", job_id, token=token)
        assert late.exit_code == 1
        assert "409 Conflict" in late.output

        slow = await tend(
            "run",
            "-H",
            "local",
            "--async",
            "--timeout",
            "120",
            "--",
            "sleep",
            env.token,
            token=token,
        )
        assert slow.exit_code == 0, slow.output
        slow_id = slow.stdout.strip().splitlines()[-1]
        await wait_process(f"sleep {env.token}", alive=True)
        stopped = await tend("jobs", "cancel", slow_id, token=token)
        assert stopped.exit_code == 0, stopped.output
        assert f"job {slow_id} is" in stopped.stdout
        ended = await tend("jobs", "watch", slow_id, token=token)
        assert ended.exit_code == 1
        assert f"job {slow_id} cancelled: cancelled" in ended.stdout
        await wait_process(f"sleep {env.token}", alive=False)
        missing = await tend("jobs", "watch", "nope", token=token)
        assert missing.exit_code == 1
        assert "404 NotFound" in missing.output
