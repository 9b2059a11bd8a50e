"""Fixtures of the job tests: the backend under test and the Celery worker pools.

``jobs_env`` runs a test once per backend (see :mod:`tests.jobs.envs`). The Celery backends
share one :class:`~tests.jobs.celery_support.WorkerPool` per broker for all tests of this package
(workers start once, not per test); the embedded backends get a fresh database per test.
Outside CI a missing service skips its backends with the reason; in CI it fails them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.celery_support import (
    BROKERS,
    POOL_SIZE,
    WorkerPool,
    create_schema,
    policy_allowing,
    require_postgres,
    require_service,
    side_effect_script,
)
from tests.jobs.envs import BACKENDS, JobEnv
from tests.jobs.job_kinds import MODULE as JOB_KINDS_MODULE


def _pool(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    pg_url = require_postgres()
    require_service(broker, BROKERS[broker])
    pool = WorkerPool.build(broker, pg_url, tmp_path_factory.mktemp(f"celery-{broker}"))
    schema = pool.fields["database_schema"]
    asyncio.run(create_schema(pg_url, schema))
    try:
        for _ in range(POOL_SIZE):
            pool.spawn_worker()
        yield pool
    finally:
        pool.close()
        asyncio.run(create_schema(pg_url, schema, drop=True))


@pytest.fixture(scope="package")
def celery_pool_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    """The Celery workers on Redis of this package's tests (started on first use)."""
    yield from _pool("redis", tmp_path_factory)


@pytest.fixture(scope="package")
def celery_pool_amqp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    """The Celery workers on RabbitMQ of this package's tests (started on first use)."""
    yield from _pool("amqp", tmp_path_factory)


def _marks(name: str) -> list[pytest.MarkDecorator]:
    if name == "inprocess-sqlite":
        return []
    if name == "inprocess-postgresql":
        return [pytest.mark.postgres]
    return [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(params=[pytest.param(name, id=name, marks=_marks(name)) for name in BACKENDS])
def job_backend(request: pytest.FixtureRequest) -> tuple[str, WorkerPool | None]:
    """The backend's name and, for Celery, its pool (services checked first)."""
    name: str = request.param
    if name == "inprocess-sqlite":
        return name, None
    require_postgres()
    if name == "inprocess-postgresql":
        return name, None
    broker = name.removeprefix("celery-")
    pool: WorkerPool = request.getfixturevalue(f"celery_pool_{broker}")
    return name, pool


@pytest.fixture(params=["redis", "amqp"])
def celery_pool(request: pytest.FixtureRequest) -> WorkerPool:
    """The pool of each broker (Celery-only tests)."""
    require_postgres()
    require_service(request.param, BROKERS[request.param])
    pool: WorkerPool = request.getfixturevalue(f"celery_pool_{request.param}")
    return pool


def _token() -> str:
    return f"30.{uuid.uuid4().int % 10**9:09d}"  # `sleep <token>` is unique to a test


async def _pool_env(name: str, pool: WorkerPool, tmp_path: Path) -> JobEnv:
    pool.replenish()  # a previous test may have killed workers
    await pool.ready(*pool.workers)
    return JobEnv(name, tmp_path, pool.fields, pool.queue, pool.script, _token(), pool)


@pytest.fixture
async def celery_env(celery_pool: WorkerPool, tmp_path: Path) -> AsyncIterator[JobEnv]:
    """A Celery backend (each broker) ready to take jobs (Celery-only tests)."""
    env = await _pool_env(f"celery-{celery_pool.broker}", celery_pool, tmp_path)
    try:
        yield env
    finally:
        await env.settle_leftovers()


async def _inprocess_fields(name: str, tmp_path: Path, schema: str) -> dict[str, Any]:
    if name == "inprocess-sqlite":
        return {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db' / 'tend.db'}"}
    url = require_postgres()
    await create_schema(url, schema)
    return {"database_url": url, "database_schema": schema}


@pytest.fixture
async def jobs_env(
    job_backend: tuple[str, WorkerPool | None], tmp_path: Path
) -> AsyncIterator[JobEnv]:
    """The backend under test, ready to take jobs."""
    name, pool = job_backend
    if pool is not None:
        env = await _pool_env(name, pool, tmp_path)
    else:
        suffix = uuid.uuid4().hex[:12]
        queue = f"tendtest-{suffix}"
        script = side_effect_script(tmp_path, suffix)
        schema = f"t_{suffix}"
        fields = {
            **await _inprocess_fields(name, tmp_path, schema),
            "secret_key": f"test-secret-{uuid.uuid4().hex}",
            "jobs": "inprocess",
            "job_heartbeat": 0.5,
            "policy_file": policy_allowing(tmp_path, script),
            "queue_routes": {"local": queue},
            "scheduler": False,
            "job_modules": [JOB_KINDS_MODULE],
            "password_hash_memory_kib": 1024,
            "password_hash_time_cost": 1,
        }
        env = JobEnv(name, tmp_path, fields, queue, script, _token())
    try:
        yield env
    finally:
        await env.settle_leftovers()
        if name == "inprocess-postgresql":
            await create_schema(
                env.fields["database_url"], env.fields["database_schema"], drop=True
            )
