"""One job backend as the shared suite sees it: settings, an API to talk to, who runs the jobs.

Backends: ``inprocess-sqlite`` and ``inprocess-postgresql`` (the embedded runner of the API
process, a fresh database per test), ``celery-redis`` and ``celery-amqp`` (a package's
:class:`~tests.jobs.celery_support.WorkerPool` of real ``tend worker`` processes; each test
starts its own API process on the pool's database and queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select

from tend.app import create_app
from tend.auth.models import Role
from tend.db import Database
from tend.jobs.bus import EventBus
from tend.jobs.models import FINISHED_STATES, Job
from tend.jobs.service import JobService
from tend.settings import Settings
from tests.conftest import Harness, make_settings, start_harness
from tests.jobs.celery_support import (
    WorkerPool,
    free_port,
    kill_matching,
    pids_matching,
    subprocess_env,
)

BACKENDS = ("inprocess-sqlite", "inprocess-postgresql", "celery-redis", "celery-amqp")
POLL = 0.05


def worker_pid(job: dict[str, Any]) -> int:
    """The pid in a job's ``worker`` field (``host:pid:suffix``)."""
    return int(job["worker"].split(":")[1])


def lines(path: Path) -> int:
    """How many lines a marker file has (0 when it does not exist)."""
    return len(path.read_text().splitlines()) if path.exists() else 0


def parse_sse(body: str) -> list[dict[str, Any]]:
    """SSE text as events: ``{"id": int, "event": str, "data": dict}``."""
    events: list[dict[str, Any]] = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields:
            events.append(
                {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            )
    return events


def states_of(events: list[dict[str, Any]]) -> list[str]:
    """The states of a job's ``state`` events, in order."""
    return [e["data"]["state"] for e in events if e["event"] == "state"]


async def has_progress(
    h: Harness, headers: dict[str, str], job_id: str, value: float, message: str
) -> bool:
    """Whether the job shows this progress and message now."""
    job = (await h.client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
    return bool(job["progress"] == value and job["message"] == message)


async def wait_job(
    h: Harness, headers: dict[str, str], job_id: str, *states: str, within: float = 20
) -> dict[str, Any]:
    """Poll a job through the API until it reaches one of ``states``."""
    deadline = time.monotonic() + within
    while True:
        job: dict[str, Any] = (await h.client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job not {'/'.join(states)} within {within} s: {job}"
        await asyncio.sleep(POLL)


async def wait_for(what: str, check: Any, within: float = 20) -> None:
    """Wait until ``check()`` (sync or async) is true."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        await asyncio.sleep(POLL)


async def wait_process(pattern: str, *, alive: bool, within: float = 10) -> None:
    """Wait until a process whose command line holds ``pattern`` runs (or is gone)."""
    what = f"{pattern!r} {'started' if alive else 'stopped'}"
    await wait_for(what, lambda: bool(pids_matching(pattern)) == alive, within)


@dataclass
class JobEnv:
    """The backend under test for one test."""

    name: str
    tmp_path: Path
    fields: dict[str, Any]
    queue: str
    script: Path
    token: str
    pool: WorkerPool | None = None

    @property
    def celery(self) -> bool:
        """Whether jobs run on Celery workers (else on the API process's embedded runner)."""
        return self.pool is not None

    def settings(self, **overrides: Any) -> Settings:
        """Settings of an API process of this backend."""
        return make_settings(self.tmp_path, **{**self.fields, **overrides})

    def runner_pids(self) -> set[int]:
        """The pids of the processes that may run this backend's jobs."""
        return {p.pid for p in self.pool.workers} if self.pool else {os.getpid()}

    @contextlib.asynccontextmanager
    async def api(self) -> AsyncIterator[Api]:
        """An API process (in this process) of the backend."""
        api = Api(self)
        await api.start()
        try:
            yield api
        finally:
            await api.close()

    async def headers(self, h: Harness, role: Role, name: str | None = None) -> dict[str, str]:
        """Access-token headers of a new user (unique names: Celery tests share a database)."""
        user = await h.user(role, name=name or f"{role.value}-{uuid.uuid4().hex[:8]}")
        return h.jwt(user)

    def job_body(self, kind: str = "test.work", **params: Any) -> dict[str, Any]:
        """A ``POST /jobs`` body for a test kind on this backend's queue."""
        return {"kind": kind, "params": params, "queue": self.queue}

    def cli_env(self) -> dict[str, str]:
        """The environment of ``tend`` CLI calls against this backend's database."""
        return subprocess_env({**self.fields, "data_dir": self.tmp_path / "data"})

    @contextlib.contextmanager
    def http_server(self) -> Iterator[str]:
        """A real HTTP API of this backend (uvicorn in a thread); yields its URL."""
        port = free_port()
        app = create_app(self.settings())
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive(), "the test server exited"
            assert time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=15)

    async def settle_leftovers(self) -> None:
        """Cancel what a (failed) test left unfinished, so it cannot disturb the next test."""
        kill_matching(f"sleep {self.token}")
        if self.pool is None:
            return
        database = Database.from_settings(self.settings())
        try:
            jobs = JobService(database, EventBus())
            async with database.session() as session:
                open_ids = (
                    await session.execute(select(Job.id).where(Job.state.not_in(FINISHED_STATES)))
                ).scalars()
                ids = list(open_ids)
            for job_id in ids:
                await jobs.cancel(job_id, by="test-teardown")
        finally:
            await database.dispose()


class Api:
    """An API process of a backend; :meth:`interrupt` takes jobs' runners down mid-job."""

    def __init__(self, env: JobEnv) -> None:
        self.env = env
        self._stack = contextlib.AsyncExitStack()
        self._h: Harness | None = None

    @property
    def h(self) -> Harness:
        assert self._h is not None
        return self._h

    async def start(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._h = await self._stack.enter_async_context(
            start_harness(self.env.settings(), first_start=False)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._h = None

    async def interrupt(self, job_ids: list[str]) -> None:
        """Take down what runs these jobs mid-job; a new runner takes over.

        Celery: SIGKILL the workers running them (their commands are orphaned: killed here too)
        and start replacements. Embedded: stop the API process (its runner settles the jobs:
        nothing stays running) and start it again on the same database.
        """
        jobs = self.h.context.jobs
        if self.env.pool is not None:
            pids = {worker_pid((await jobs.get(job_id)).model_dump()) for job_id in job_ids}
            victims = [p for p in self.env.pool.workers if p.pid in pids]
            assert victims, f"no pool worker runs {job_ids} (pids {pids})"
            for proc in victims:
                proc.kill()
            kill_matching(f"sleep {self.env.token}")
            self.env.pool.replenish()
            return
        runner = jobs.backend
        assert runner is not None
        await runner.stop()  # type: ignore[attr-defined]
        states = {job_id: (await jobs.get(job_id)).state for job_id in job_ids}
        assert "running" not in states.values(), f"a stopped server left jobs running: {states}"
        await self.close()
        await self.start()
