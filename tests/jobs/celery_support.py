"""Helpers of the Celery tests: service probes, a pool of real worker processes, broker cleanup.

The job tests start one :class:`WorkerPool` per broker: two ``tend worker`` processes on a
PostgreSQL schema and a broker queue (``tendtest-<hex>``) of their own. Runs on host ``local``
are routed to that queue (``TEND_QUEUE_ROUTES``), other jobs name it, and the workers consume
only it, so concurrent test runs sharing a broker never take each other's messages. The schema
and the queues are deleted after the last job test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import IN_CI, _postgres_problem, postgres_url
from tests.jobs.job_kinds import MODULE as JOB_KINDS_MODULE

REDIS_URL = os.environ.get("TEND_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
AMQP_URL = os.environ.get("TEND_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "amqp": AMQP_URL}
# The same brokers on a closed port: "the broker is down".
DEAD_BROKERS = {
    "redis": "redis://127.0.0.1:1/0",
    "amqp": "amqp://guest:guest@127.0.0.1:1//",
}
REPO = Path(__file__).resolve().parents[2]
POOL_SIZE = 2

_problems: dict[str, str | None] = {}


def _probe(url: str) -> None:
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    else:
        from kombu import Connection

        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)


def require_service(name: str, url: str) -> None:
    """Fail in CI, or skip elsewhere with the reason, when a service does not answer."""
    if url not in _problems:
        try:
            _probe(url)
            _problems[url] = None
        except Exception as exc:  # any failure means "not usable"; the reason is reported
            _problems[url] = f"{type(exc).__name__}: {exc}"
    problem = _problems[url]
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{name} at {url} is unreachable in CI: {problem}")
        pytest.skip(f"{name} at {url} is unreachable: {problem}")


def require_postgres() -> str:
    """The PostgreSQL URL; fail in CI, or skip elsewhere with the reason, when it is unusable."""
    url = postgres_url()
    if url is None:
        pytest.skip("this backend needs PostgreSQL: set TEND_TEST_DATABASE_URL (CI sets it)")
    problem = _postgres_problem(url)
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {url} is unreachable in CI: {problem}")
        pytest.skip(f"PostgreSQL at {url} is unreachable: {problem}")
    return url


async def create_schema(url: str, schema: str, *, drop: bool = False) -> None:
    """Create (or drop, with everything in it) a PostgreSQL schema."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            statement = (
                f"DROP SCHEMA IF EXISTS {schema} CASCADE" if drop else f"CREATE SCHEMA {schema}"
            )
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pids_matching(pattern: str) -> list[int]:
    # "[x]yz" matches the process but never pgrep's own command line.
    found = subprocess.run(
        ["pgrep", "-f", f"[{pattern[0]}]{pattern[1:]}"], check=False, capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def kill_matching(pattern: str) -> None:
    """SIGKILL, one by one, the processes whose command line holds this test-unique pattern."""
    for pid in pids_matching(pattern):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<no log: {exc}>"


def subprocess_env(fields: dict[str, Any]) -> dict[str, str]:
    """The environment of a tend process (or CLI call) with these settings as ``TEND_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEND_")}
    for key, value in fields.items():
        if value is None:
            continue
        text_value = json.dumps(value) if isinstance(value, list | dict | bool) else str(value)
        env[f"TEND_{key.upper()}"] = text_value
    return env


@dataclass
class Proc:
    """A real tend process (worker or server) started by a test."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``grace`` seconds."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def kill(self) -> None:
        """SIGKILL (a crash) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(5)


@dataclass
class WorkerPool:
    """Celery workers of one broker shared by the job tests: one schema, one queue, fixed settings.

    The settings (``fields``) are also what each test's API process uses, so the API and the
    workers share the database, the secret key, the policy and the routes.
    """

    broker: str
    broker_url: str
    tmp_path: Path
    fields: dict[str, Any]
    queue: str
    script: Path
    procs: list[Proc] = field(default_factory=list)
    queues: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, broker: str, pg_url: str, tmp_path: Path) -> WorkerPool:
        """Settings of a new pool (nothing starts yet)."""
        suffix = uuid.uuid4().hex[:12]
        queue = f"tendtest-{suffix}"
        script = side_effect_script(tmp_path, suffix)
        fields: dict[str, Any] = {
            "database_url": pg_url,
            "database_schema": f"t_{suffix}",
            "secret_key": f"celery-test-secret-{uuid.uuid4().hex}",
            "jobs": "celery",
            "broker_url": BROKERS[broker],
            "job_heartbeat": 0.5,
            "celery_visibility_timeout": 5,
            "policy_file": policy_allowing(tmp_path, script),
            # Runs on host "local" (tagged "local") go to this pool's queue; other jobs name it.
            "queue_routes": {"local": queue},
            "scheduler": False,  # no periodic jobs sent to the shared "default" queue
            "job_modules": [JOB_KINDS_MODULE],
            "run_part_hosts": 2,  # runs over more than 2 hosts are split into part jobs
            "password_hash_memory_kib": 1024,
            "password_hash_time_cost": 1,
        }
        if broker == "redis":
            fields["redis_url"] = REDIS_URL  # live events across processes through Redis
        return cls(broker, BROKERS[broker], tmp_path, fields, queue, script, queues={queue})

    def env(self, role: str, **overrides: Any) -> dict[str, str]:
        """The environment of a tend subprocess of this pool."""
        env = subprocess_env(
            {
                **self.fields,
                "data_dir": self.tmp_path / f"data-{role}",
                "log_format": "json",
                **overrides,
            }
        )
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(  # the test's own process; stopped by pid in teardown
                [sys.executable, "-m", "tend", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def spawn_worker(self) -> Proc:
        """Start ``tend worker`` on the pool's queue (wait with :meth:`ready`)."""
        name = f"worker{sum(p.name.startswith('worker') for p in self.procs)}"
        return self._spawn(
            name, ["worker", "--queues", self.queue, "--concurrency", "4"], self.env(name)
        )

    def spawn_server(self) -> Proc:
        """Start ``tend serve`` on a free loopback port (wait with :meth:`ready`)."""
        port = free_port()
        name = f"server{sum(p.name.startswith('server') for p in self.procs)}"
        proc = self._spawn(
            name, ["serve", "--host", "127.0.0.1", "--port", str(port)], self.env(name)
        )
        proc.url = f"http://127.0.0.1:{port}"
        return proc

    @property
    def workers(self) -> list[Proc]:
        """The workers still running."""
        return [p for p in self.procs if p.name.startswith("worker") and p.alive()]

    def replenish(self) -> list[Proc]:
        """Start workers until :data:`POOL_SIZE` run (after a test killed some)."""
        return [self.spawn_worker() for _ in range(POOL_SIZE - len(self.workers))]

    async def ready(self, *procs: Proc, within: float = 30) -> None:
        """Wait until workers log "ready" and servers answer /health."""
        deadline = time.monotonic() + within
        waiting = list(procs)
        async with httpx.AsyncClient(timeout=2) as client:
            while waiting:
                for proc in list(waiting):
                    assert proc.alive(), f"{proc.name} exited early:\n{tail(proc.log)}"
                    if proc.url is None:
                        if b" ready." in proc.log.read_bytes():
                            waiting.remove(proc)
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{proc.url}/health")).status_code == 200:
                            waiting.remove(proc)
                if not waiting:
                    return
                names = [p.name for p in waiting]
                assert time.monotonic() < deadline, f"{names} not ready within {within} s"
                await asyncio.sleep(0.05)

    def close(self) -> None:
        """Stop every process of the pool, show the end of each log, delete the queues."""
        for proc in self.procs:  # all at once: each takes a moment to shut down warmly
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.stop()
        kill_matching(str(self.script))
        for proc in self.procs:
            print(f"----- {proc.name} (pid {proc.pid}) log tail -----\n{tail(proc.log)}")
        if self.broker == "redis":
            _purge_redis(self.broker_url, self.queues)
        else:
            _purge_amqp(self.broker_url, self.queues)


def side_effect_script(directory: Path, suffix: str) -> Path:
    """A command with a side effect: ``script MARKER TOKEN`` appends to MARKER, sleeps TOKEN s."""
    script = directory / f"tend-side-effect-{suffix}.sh"
    script.write_text('#!/bin/sh\necho started >> "$1"\nexec sleep "$2"\n')
    script.chmod(0o755)
    return script


def policy_allowing(directory: Path, script: Path) -> Path:
    """A policy file that makes running ``script`` (with any arguments) a read."""
    policy = directory / "policy.yaml"
    policy.write_text(f'rules:\n  - id: test-script\n    allow: [["{script}", "..."]]\n')
    return policy


def _purge_redis(url: str, queues: set[str]) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        for queue in queues:
            keys = [
                *client.scan_iter(match=f"{queue}*"),
                f"_kombu.binding.{queue}",
                f"_kombu.binding_permanent.{queue}",
            ]
            client.delete(*keys)
        # Unacked deliveries (of killed workers) would be restored into the queue later.
        for tag, payload in client.hgetall("unacked").items():
            with contextlib.suppress(ValueError, TypeError, IndexError):
                _message, exchange, routing_key = json.loads(payload)
                if exchange in queues or routing_key in queues:
                    client.hdel("unacked", tag)
                    client.zrem("unacked_index", tag)
    finally:
        client.close()


def _purge_amqp(url: str, queues: set[str]) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=3) as conn:
        for queue in queues:
            with contextlib.suppress(Exception):
                conn.default_channel.queue_delete(queue)
            with contextlib.suppress(Exception):
                conn.default_channel.exchange_delete(queue)
