"""Fixtures of the Celery tests: a fresh PostgreSQL schema and a unique queue per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import IN_CI, _postgres_problem, postgres_url
from tests.jobs.celery_support import BROKERS, CeleryCase, require_service


@pytest.fixture(params=[pytest.param("redis", id="redis"), pytest.param("amqp", id="amqp")])
def celery_broker(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """(broker name, broker URL, PostgreSQL URL), after checking both answer."""
    broker: str = request.param
    url = postgres_url()
    if url is None:
        pytest.skip("Celery tests need PostgreSQL: set TEND_TEST_DATABASE_URL (CI sets it)")
    problem = _postgres_problem(url)
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {url} is unreachable in CI: {problem}")
        pytest.skip(f"PostgreSQL at {url} is unreachable: {problem}")
    require_service(broker, BROKERS[broker])
    return broker, BROKERS[broker], url


@pytest.fixture
async def celery_case(
    celery_broker: tuple[str, str, str], tmp_path: Path
) -> AsyncIterator[CeleryCase]:
    """A fresh schema, a unique queue runs on ``local`` go to, a policy allowing a test script."""
    broker, broker_url, pg_url = celery_broker
    suffix = uuid.uuid4().hex[:12]
    queue = f"tendtest-{suffix}"
    token = f"30.{uuid.uuid4().int % 10**9:09d}"
    marker = tmp_path / "marker"
    script = tmp_path / f"tend-side-effect-{suffix}.sh"
    script.write_text(f"#!/bin/sh\necho started >> {marker}\nexec sleep {token}\n")
    script.chmod(0o755)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'rules:\n  - id: test-script\n    allow: [["{script}", "..."]]\n')
    schema = f"t_{suffix}"
    fields = {
        "database_url": pg_url,
        "database_schema": schema,
        "secret_key": f"celery-test-secret-{uuid.uuid4().hex}",
        "jobs": "celery",
        "broker_url": broker_url,
        "job_heartbeat": 0.5,
        "celery_visibility_timeout": 5,
        "policy_file": policy,
        # Runs on host "local" (tagged "local") go to this test's queue; other jobs name it.
        "queue_routes": {"local": queue},
        "scheduler": False,  # no periodic jobs sent to the shared "default" queue
    }
    case = CeleryCase(tmp_path, broker, broker_url, queue, fields, script, marker, token)
    admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        yield case
    finally:
        case.stop_all()
        case.purge_queues()
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        await admin.dispose()
