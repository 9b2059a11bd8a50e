#!/usr/bin/env python3
"""Benchmark: tend's job backends — no-op throughput and latency, and one big ``run`` job.

Part A: ``--jobs`` (10,000) ``noop`` jobs through each backend — ``inprocess`` (the embedded
runner), Celery on Redis and Celery on RabbitMQ — all with PostgreSQL state in a fresh schema per
backend. Jobs are enqueued through ``JobService.enqueue`` of an app started in this process (its
real lifespan) as fast as ``--enqueue-concurrency`` coroutines can, and the figures come from
the job rows: throughput = finished jobs / (last ``finished_at`` - first ``created_at``),
enqueue-to-start latency = ``started_at`` - ``created_at`` (p50, p99). Before the burst, one
job at a time (``--idle-jobs``) gives the latency of an idle system. Celery workers are
``python -m tend worker --concurrency N`` subprocesses. CPU seconds per process group (this
process, workers, PostgreSQL, broker, everything else) are sampled from /proc around the burst.

Part B: ``uptime`` on ``--hosts`` (200) loopback sshd servers as ONE background job
(``POST /api/v1/runs {"async": true}``, through an in-process ASGI client) on Celery+Redis with
1 worker vs 2 workers, ``--rounds`` rounds, fresh worker processes each time (so the first run
opens every SSH connection), then a second run on the same workers.

Everything runs on loopback, every wait is bounded, every process started here is stopped and
every schema dropped; the script exits by itself.

Usage::

    .venv/bin/python bench/jobs.py [--jobs 10000] [--backends inprocess,redis,rabbitmq]
        [--workers 1] [--hosts 200] [--rounds 3] [--parts a,b] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import faulthandler
import importlib.metadata
import io
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import kombu
import redis
from amqp.exceptions import NotFound as AmqpNotFound
from sqlalchemy import bindparam, event, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

import tend.jobs.builtin  # noqa: F401 - registers the built-in job kinds
from sshd_fleet import INSTALL_HINT, SSHD, Fleet, FleetError, sshd_available, sshd_fleet
from tend.app import create_app
from tend.auth.models import Role
from tend.auth.service import get_user
from tend.auth.tokens import create_token
from tend.jobs.celery_backend import CeleryBackend, WorkerRuntime
from tend.jobs.inprocess import InProcessRunner
from tend.jobs.kinds import KINDS
from tend.jobs.service import JobService
from tend.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON_OUT = BENCH_DIR / "results" / "jobs.json"
DEFAULT_PG_URL = os.environ.get(
    "TEND_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"  # a db index of its own: FLUSHDB is ours
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
BACKENDS = ("inprocess", "redis", "rabbitmq")
LABELS = {"inprocess": "inprocess", "redis": "celery+redis", "rabbitmq": "celery+rabbitmq"}

BURST = "bench"  # requested_by of the measured jobs
IDLE = "bench-idle"
WARMUP = "bench-warmup"
FINISHED = ("succeeded", "failed", "cancelled")
TAG = "bench"
HOST_TIMEOUT = 30.0  # per-host timeout of the run, s
WORKER_READY_TIMEOUT = 90.0  # workers started until each has run a job
WORKER_STOP_TIMEOUT = 20.0  # SIGTERM (warm shutdown) until SIGKILL
RUN_JOB_TIMEOUT = 240.0  # one part B run job, s
IDLE_JOB_TIMEOUT = 30.0
PROGRESS_EVERY = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A measurement could not be trusted (failure, timeout, wrong output)."""


def log(message: str) -> None:
    print(message, flush=True)


SERIALIZE_ENV = "TEND_BENCH_SERIALIZE_EVENTS"
DISPATCH_ENV = "TEND_BENCH_DISPATCH_PARTS"
WORKAROUND_ENV = {"events": SERIALIZE_ENV, "dispatch": DISPATCH_ENV}


def serialize_job_events() -> None:
    """Workaround, for part B only when asked: one event writer per job in this process.

    ``JobService.record`` takes ``max(seq) + 1`` and retries 5 times on a unique-key clash; the
    ``run`` kind emits ``host_started`` from every concurrent host task at once, so on a wide
    fan-out all retries clash and the job fails with "could not append an event". This wraps
    ``record`` in a per-job ``asyncio.Lock`` (a worker runs its jobs on one event loop).
    """
    original = JobService.record
    locks: dict[str, asyncio.Lock] = {}

    async def record(self: JobService, job_id: str, *args: Any, **kwargs: Any) -> Any:
        async with locks.setdefault(job_id, asyncio.Lock()):
            return await original(self, job_id, *args, **kwargs)

    JobService.record = record  # type: ignore[method-assign]


def dispatch_from_workers() -> None:
    """Workaround, for part B only when asked: a worker sends the jobs it enqueues.

    ``WorkerRuntime`` builds its app context without a job backend, so the part jobs a ``run``
    enqueues inside a worker are only committed: nothing sends them to the broker until an API
    (or beat) process's re-dispatch loop finds them (every 15 s, jobs queued over 30 s). This
    gives the worker's job service a ``CeleryBackend`` (without its re-dispatch loop).
    """
    original = WorkerRuntime._build

    async def build(self: WorkerRuntime) -> InProcessRunner:
        runner = await original(self)
        runner.jobs.backend = CeleryBackend(self.settings, runner.jobs)
        return runner

    WorkerRuntime._build = build  # type: ignore[method-assign]


# Imported by a worker through TEND_JOB_MODULES (part B, only with --workarounds).
if os.environ.get(SERIALIZE_ENV) == "1" or os.environ.get(DISPATCH_ENV) == "1":
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks on demand, to the log
if os.environ.get(SERIALIZE_ENV) == "1":
    serialize_job_events()
if os.environ.get(DISPATCH_ENV) == "1":
    dispatch_from_workers()


# --------------------------------------------------------------------------- machine and versions


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def redis_server_version(url: str) -> str:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"unreachable ({exc})"


def rabbitmq_version(url: str) -> str:
    try:
        with kombu.Connection(url, connect_timeout=3) as conn:
            conn.connect()
            props = conn.connection.server_properties
            value = props.get("version", "unknown")
            return value.decode() if isinstance(value, bytes) else str(value)
    except Exception as exc:  # kombu/amqp raise many types; any means "not reachable"
        return f"unreachable ({type(exc).__name__})"


async def postgres_version(pg_url: str) -> str:
    engine = create_async_engine(pg_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("SHOW server_version"))).scalar_one())
    finally:
        await engine.dispose()


def openssh_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [str(SSHD), "-V"], capture_output=True, text=True, timeout=10, check=False
        )
        text_ = (out.stderr or out.stdout).strip()
        if text_.startswith("OpenSSH"):
            return text_.splitlines()[0]
    return "unknown"


def tend_source() -> str:
    """The commit of the tend checkout measured, and which source files differ from it."""
    repo = BENCH_DIR.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    jobs_files = sorted(line[3:] for line in changed if "src/tend/jobs/" in line)
    others = sum(1 for line in changed if line.strip()) - len(jobs_files)
    dirty = f" + uncommitted {', '.join(jobs_files)}" if jobs_files else ""
    return f"{head}{dirty}" + (f" (+{others} other changed files in src)" if others else "")


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
    }


def versions(args: argparse.Namespace) -> dict[str, str]:
    return {
        "tend": version_of("tend"),
        "tend_source": tend_source(),
        "celery": version_of("celery"),
        "kombu": version_of("kombu"),
        "py-amqp": version_of("amqp"),
        "redis-py": version_of("redis"),
        "asyncpg": version_of("asyncpg"),
        "sqlalchemy": version_of("sqlalchemy"),
        "asyncssh": version_of("asyncssh"),
        "redis-server": redis_server_version(args.redis_url),
        "rabbitmq": rabbitmq_version(args.amqp_url),
        "openssh": openssh_version(),
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------- CPU accounting


def process_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every process, by pid, with its command name."""
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        head, _, tail = raw.rpartition(")")
        fields = tail.split()
        comm = head.split("(", 1)[1] if "(" in head else "?"
        found[int(entry.name)] = (comm, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return found


def machine_jiffies() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


@dataclass
class CpuMeter:
    """CPU seconds by process group between :meth:`start` and :meth:`stop`.

    Processes that exit in between are missed (their time is lost, not misattributed).
    """

    worker_pids: Callable[[], set[int]]
    before: dict[int, tuple[str, float]] = field(default_factory=dict)
    jiffies: tuple[float, float] = (0.0, 0.0)
    started: float = 0.0

    def start(self) -> None:
        self.before = process_cpu()
        self.jiffies = machine_jiffies()
        self.started = time.monotonic()

    def _group(self, pid: int, comm: str, workers: set[int]) -> str:
        if pid == os.getpid():
            return "bench+api"
        if pid in workers:
            return "workers"
        if comm == "postgres":
            return "postgresql"
        if comm == "redis-server":
            return "redis"
        if comm in {"beam.smp", "erl_child_setup", "epmd", "inet_gethost"}:
            return "rabbitmq"
        return "other"

    def stop(self) -> dict[str, Any]:
        after = process_cpu()
        busy1, total1 = machine_jiffies()
        wall = time.monotonic() - self.started
        workers = self.worker_pids()
        groups: dict[str, float] = collections.defaultdict(float)
        others: dict[str, float] = collections.defaultdict(float)
        for pid, (comm, cpu) in after.items():
            delta = cpu - self.before.get(pid, (comm, 0.0))[1]
            if delta > 0:
                group = self._group(pid, comm, workers)
                groups[group] += delta
                if group == "other":
                    others[comm] += delta
        busy = busy1 - self.jiffies[0]
        total = total1 - self.jiffies[1]
        return {
            "wall_s": round(wall, 3),
            "machine_busy_pct": round(100 * busy / total, 1) if total > 0 else None,
            "cpu_s": {name: round(value, 2) for name, value in sorted(groups.items())},
            "other_top_cpu_s": {
                comm: round(value, 2)
                for comm, value in sorted(others.items(), key=lambda kv: -kv[1])[:5]
            },
        }


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class SqlCounter:
    """Statements and pool checkouts (each one a pre-ping round trip) of one engine."""

    statements: int = 0
    checkouts: int = 0

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine.pool, "checkout", self._checkout)

    def detach(self, engine: AsyncEngine) -> None:
        event.remove(engine.sync_engine, "before_cursor_execute", self._statement)
        event.remove(engine.sync_engine.pool, "checkout", self._checkout)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1


async def pg_transactions(monitor: AsyncEngine) -> int:
    """Committed + rolled back transactions of the whole database so far (all clients)."""
    query = text(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()"
    )
    async with monitor.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


@contextlib.asynccontextmanager
async def pg_schema(pg_url: str, prefix: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A fresh schema (dropped afterwards) and a small engine whose search_path is it."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    admin = create_async_engine(pg_url, poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:
        await admin.dispose()
        raise BenchError(f"cannot create schema {name} at {pg_url}: {exc}") from exc
    monitor = create_async_engine(
        pg_url,
        pool_size=2,
        max_overflow=0,
        connect_args={"server_settings": {"search_path": name}},
    )
    try:
        yield name, monitor
    finally:
        await monitor.dispose()
        try:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        except Exception as exc:  # best effort, but say so
            print(f"warning: could not drop schema {name}: {exc}", file=sys.stderr)
        await admin.dispose()


JOB_COLUMNS = "id, kind, state, created_at, started_at, finished_at, worker, result, error"


async def job_rows(monitor: AsyncEngine, where: str, **params: Any) -> list[Row[Any]]:
    query = text(f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where}")
    if "ids" in params:
        query = query.bindparams(bindparam("ids", expanding=True))
    async with monitor.connect() as conn:
        return list((await conn.execute(query, params)).all())


async def count_finished(monitor: AsyncEngine, requested_by: str) -> tuple[int, int]:
    query = text(
        "SELECT count(*) FILTER (WHERE state IN ('succeeded', 'failed', 'cancelled')),"
        " count(*) FILTER (WHERE state = 'running') FROM jobs WHERE requested_by = :rb"
    )
    async with monitor.connect() as conn:
        done, running = (await conn.execute(query, {"rb": requested_by})).one()
    return int(done), int(running)


def worker_pid(name: str | None) -> int | None:
    """The pid in a runner name ``host:pid:suffix``."""
    if not name:
        return None
    parts = name.split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


# --------------------------------------------------------------------------- brokers


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.flushdb()
    except (redis.RedisError, OSError) as exc:
        raise BenchError(f"redis at {url}: {exc}") from exc
    finally:
        client.close()


def purge_amqp(url: str, queue: str) -> int:
    """Purge the queue; refuse when someone else consumes it (their jobs are not ours)."""
    try:
        with kombu.Connection(url, connect_timeout=3) as conn:
            channel = conn.channel()
            try:
                _, messages, consumers = channel.queue_declare(queue=queue, passive=True)
            except AmqpNotFound:
                return 0
            if consumers:
                raise BenchError(
                    f"queue {queue!r} on {url} has {consumers} consumers that are not ours; "
                    "stop them or pass --queue NAME"
                )
            channel.queue_purge(queue)
            return int(messages)
    except BenchError:
        raise
    except Exception as exc:  # kombu/amqp raise many types; all mean "broker unusable"
        raise BenchError(f"rabbitmq at {url}: {type(exc).__name__}: {exc}") from exc


def purge(backend: str, args: argparse.Namespace) -> None:
    if backend == "redis":
        flush_redis(args.redis_url)
    elif backend == "rabbitmq":
        purge_amqp(args.amqp_url, args.queue)


# --------------------------------------------------------------------------- tend processes


def tend_settings(
    args: argparse.Namespace, workdir: Path, schema: str, secret: str, **extra: Any
) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=workdir / "tend-data",
        database_url=args.pg_url,
        database_schema=schema,
        secret_key=secret,
        job_heartbeat=args.heartbeat,
        scheduler=False,  # no periodic jobs mixed into the measured ones
        log_level="WARNING",
        access_log=False,
        password_hash_memory_kib=1024,
        password_hash_time_cost=1,
        **extra,
    )


def worker_env(settings: Settings, workarounds: Iterable[str] = ()) -> dict[str, str]:
    """The worker's environment: this one minus any TEND_*, plus the API side's settings.

    With ``workarounds`` (``events``, ``dispatch``) the worker imports this file as a job module
    (``TEND_JOB_MODULES``), which applies :func:`serialize_job_events` and/or
    :func:`dispatch_from_workers` (labelled workarounds of bugs found here, see there).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEND_")}
    if settings.broker_url is None or settings.database_url is None:
        raise BenchError("workers need a broker and a database URL")
    if settings.secret_key is None or settings.database_schema is None:
        raise BenchError("workers need the shared secret key and schema")
    env.update(
        TEND_JOBS="celery",
        TEND_BROKER_URL=settings.broker_url.get_secret_value(),
        TEND_DATABASE_URL=settings.database_url.get_secret_value(),
        TEND_DATABASE_SCHEMA=settings.database_schema,
        TEND_SECRET_KEY=settings.secret_key.get_secret_value(),
        TEND_JOB_HEARTBEAT=str(settings.job_heartbeat),
        TEND_DATA_DIR=str(settings.data_dir),
        TEND_FANOUT_CONCURRENCY=str(settings.fanout_concurrency),
        TEND_LOG_LEVEL="WARNING",
        TEND_LOG_FORMAT="text",
        TEND_SCHEDULER="false",
    )
    if settings.ssh_key_file is not None:
        env["TEND_SSH_KEY_FILE"] = str(settings.ssh_key_file)
    chosen = set(workarounds)
    if chosen:
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(BENCH_DIR) + (os.pathsep + path if path else "")
        env["TEND_JOB_MODULES"] = json.dumps([Path(__file__).stem])
        for name in chosen:
            env[WORKAROUND_ENV[name]] = "1"
    return env


@dataclass
class Workers:
    """``python -m tend worker`` subprocesses, each in its own session, logs in files."""

    env: dict[str, str]
    workdir: Path
    concurrency: int
    queue: str
    procs: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    started: int = 0

    def start(self, count: int) -> None:
        for _ in range(count):
            self.started += 1
            log_file = self.workdir / f"worker-{self.started}.log"
            argv = [
                sys.executable,
                "-m",
                "tend",
                "worker",
                f"--concurrency={self.concurrency}",
                f"--queues={self.queue}",
            ]
            with log_file.open("wb") as out:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.workdir,  # no stray .env file
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.procs.append((proc, log_file))

    def pids(self) -> set[int]:
        return {proc.pid for proc, _ in self.procs}

    def tails(self, chars: int = 3000) -> str:
        """The end of every worker's log, after asking patched workers for their stacks."""
        for proc, _ in self.procs:
            if proc.poll() is None and WORKAROUND_ENV["events"] in self.env:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        parts = []
        for proc, log in self.procs:
            kept = Path(tempfile.gettempdir()) / f"tend-bench-jobs-worker-{proc.pid}.log"
            shutil.copyfile(log, kept)
            parts.append(
                f"--- worker {proc.pid} ({kept}):\n{log.read_text(errors='replace')[-chars:]}"
            )
        return "\n".join(parts)

    def check(self) -> None:
        for proc, log_file in self.procs:
            if proc.poll() is not None:
                tail = log_file.read_text(errors="replace").strip()[-1500:]
                raise BenchError(f"worker {proc.pid} exited with {proc.returncode}: {tail}")

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)  # Celery warm shutdown
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT
        for proc, _ in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: only ours
                proc.wait(10)
        self.procs.clear()


@contextlib.asynccontextmanager
async def app_running(settings: Settings) -> AsyncIterator[Any]:
    """The tend app with its lifespan (migrations, first admin, job backend) in this process."""
    app = create_app(settings)
    first_start = io.StringIO()
    lifespan = app.router.lifespan_context(app)
    with contextlib.redirect_stderr(first_start):  # the admin's one-time password
        await lifespan.__aenter__()
    try:
        yield app
    finally:
        await lifespan.__aexit__(None, None, None)


async def wait_jobs(
    monitor: AsyncEngine,
    ids: Sequence[str],
    limit_s: float,
    workers: Workers | None,
    poll: float = 0.05,
) -> list[Row[Any]]:
    """Wait until every job is finished; return their rows."""
    deadline = time.monotonic() + limit_s
    while True:
        rows = await job_rows(monitor, "id IN :ids", ids=list(ids))
        if len(rows) == len(ids) and all(r.state in FINISHED for r in rows):
            return rows
        if workers is not None:
            workers.check()
        if time.monotonic() > deadline:
            states = collections.Counter(r.state for r in rows)
            logs = await asyncio.to_thread(workers.tails) if workers is not None else ""
            raise BenchError(
                f"{len(ids)} jobs not finished after {limit_s:.0f} s: {dict(states)}\n{logs}"
            )
        await asyncio.sleep(poll)


async def warm_up(
    jobs: JobService, monitor: AsyncEngine, workers: Workers | None, per_worker: int
) -> None:
    """Run no-ops until every worker process has run one (its runtime is built lazily)."""
    expected = workers.pids() if workers is not None else set()
    seen: set[int] = set()
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while True:
        count = per_worker * max(1, len(expected))
        sent = await asyncio.gather(
            *(jobs.enqueue("noop", {}, requested_by=WARMUP) for _ in range(count))
        )
        remaining = max(1.0, deadline - time.monotonic())
        rows = await wait_jobs(monitor, [j.id for j in sent], remaining, workers)
        bad = [r for r in rows if r.state != "succeeded"]
        if bad:
            raise BenchError(f"warm-up job {bad[0].id} {bad[0].state}: {bad[0].error}")
        seen |= {pid for r in rows if (pid := worker_pid(r.worker)) is not None}
        if expected <= seen:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"workers {sorted(expected - seen)} took no job in warm-up")


# --------------------------------------------------------------------------- part A


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latencies(rows: Sequence[Row[Any]]) -> list[float]:
    return [(r.started_at - r.created_at).total_seconds() for r in rows if r.started_at]


async def idle_latency(
    jobs: JobService, monitor: AsyncEngine, count: int, workers: Workers | None
) -> dict[str, Any]:
    """One job at a time, each waited for: enqueue-to-start on an idle system."""
    for _ in range(count):
        job = await jobs.enqueue("noop", {}, requested_by=IDLE)
        await wait_jobs(monitor, [job.id], IDLE_JOB_TIMEOUT, workers, poll=0.005)
    values = latencies(await job_rows(monitor, "requested_by = :rb", rb=IDLE))
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(1000 * percentile(values, 50), 2),
        "p99_ms": round(1000 * percentile(values, 99), 2),
    }


async def enqueue_burst(
    jobs: JobService, total: int, concurrency: int, deadline: float
) -> tuple[int, float]:
    """Enqueue ``total`` no-ops from ``concurrency`` coroutines; return (enqueued, seconds)."""
    numbers = iter(range(total))
    sent = 0

    async def sender() -> None:
        nonlocal sent
        for _ in numbers:  # shared: each number is taken by one sender
            if time.monotonic() > deadline:
                return
            await jobs.enqueue("noop", {}, requested_by=BURST)
            sent += 1

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return sent, time.perf_counter() - start


async def wait_burst(
    monitor: AsyncEngine, enqueued: int, deadline: float, workers: Workers | None
) -> bool:
    """Wait until every burst job finished (True) or the deadline passed (False)."""
    started = time.monotonic()
    last_report = started
    while True:
        done, running = await count_finished(monitor, BURST)
        if done >= enqueued:
            return True
        now = time.monotonic()
        if now > deadline:
            return False
        if now - last_report >= PROGRESS_EVERY:
            last_report = now
            log(f"      {done}/{enqueued} finished, {running} running ({now - started:.0f} s)")
        if workers is not None:
            workers.check()
        await asyncio.sleep(0.25)


def burst_figures(rows: Sequence[Row[Any]], enqueued: int, enqueue_s: float) -> dict[str, Any]:
    finished = [r for r in rows if r.finished_at is not None]
    first_created = min(r.created_at for r in rows)
    last_created = max(r.created_at for r in rows)
    span = (max(r.finished_at for r in finished) - first_created).total_seconds() if finished else 0
    starts = latencies(rows)
    runs = [(r.finished_at - r.started_at).total_seconds() for r in finished if r.started_at]
    by_worker = collections.Counter(str(worker_pid(r.worker)) for r in rows if r.started_at)
    return {
        "enqueued": enqueued,
        "finished": len(finished),
        "states": dict(collections.Counter(r.state for r in rows)),
        "enqueue_client_s": round(enqueue_s, 3),
        "enqueue_per_s": round(enqueued / enqueue_s, 1) if enqueue_s else None,
        "created_span_s": round((last_created - first_created).total_seconds(), 3),
        "span_s": round(span, 3),
        "jobs_per_s": round(len(finished) / span, 1) if span else None,
        "start_latency_p50_ms": round(1000 * percentile(starts, 50), 1) if starts else None,
        "start_latency_p99_ms": round(1000 * percentile(starts, 99), 1) if starts else None,
        "start_latency_max_ms": round(1000 * max(starts), 1) if starts else None,
        "run_p50_ms": round(1000 * percentile(runs, 50), 2) if runs else None,
        "jobs_by_worker_pid": dict(by_worker),
    }


def count_redispatch(backend: Any) -> list[int]:
    """Wrap the API side's re-dispatch so the bench can report how many jobs it re-sent."""
    sent: list[int] = []
    original = backend.redispatch

    async def counted() -> int:
        number: int = await original()
        sent.append(number)
        return number

    backend.redispatch = counted
    return sent


async def bench_backend(
    backend: str, args: argparse.Namespace, workdir: Path, secret: str
) -> dict[str, Any]:
    label = LABELS[backend]
    log(f"  {label}")
    result: dict[str, Any] = {"backend": label}
    async with pg_schema(args.pg_url, "bench_jobs") as (schema, monitor):
        extra: dict[str, Any] = {
            "jobs": "inprocess",
            "jobs_concurrency": args.inprocess_concurrency,
        }
        if backend != "inprocess":
            broker = args.redis_url if backend == "redis" else args.amqp_url
            extra = {"jobs": "celery", "broker_url": broker}
            await asyncio.to_thread(purge, backend, args)
        settings = tend_settings(args, workdir, schema, secret, **extra)
        workers: Workers | None = None
        if backend != "inprocess":
            workers = Workers(worker_env(settings), workdir, args.worker_concurrency, args.queue)
        meter = CpuMeter(lambda: workers.pids() if workers is not None else set())
        result["schema"] = schema
        result["execution"] = (
            f"embedded runner, concurrency {args.inprocess_concurrency}, in this process"
            if workers is None
            else f"{args.workers} worker process(es) x {args.worker_concurrency} threads"
        )
        try:
            async with app_running(settings) as app:
                jobs: JobService = app.state.context.jobs
                redispatched = [] if workers is None else count_redispatch(jobs.backend)
                if workers is not None:
                    await asyncio.to_thread(workers.start, args.workers)
                await warm_up(jobs, monitor, workers, per_worker=2 * args.worker_concurrency)
                result["idle"] = await idle_latency(jobs, monitor, args.idle_jobs, workers)
                log(
                    f"    idle enqueue-to-start: p50 {result['idle'].get('p50_ms')} ms, "
                    f"p99 {result['idle'].get('p99_ms')} ms ({args.idle_jobs} jobs one at a time)"
                )
                deadline = time.monotonic() + args.time_limit
                sql = SqlCounter()
                sql.attach(app.state.context.database.engine)
                xacts = await pg_transactions(monitor)
                meter.start()
                enqueued, enqueue_s = await enqueue_burst(
                    jobs, args.jobs, args.enqueue_concurrency, deadline
                )
                log(f"    enqueued {enqueued} in {enqueue_s:.1f} s; waiting for them")
                complete = await wait_burst(monitor, enqueued, deadline, workers)
                result["cpu"] = meter.stop()
                sql.detach(app.state.context.database.engine)
                xacts = await pg_transactions(monitor) - xacts
                rows = await job_rows(monitor, "requested_by = :rb", rb=BURST)
                result.update(burst_figures(rows, enqueued, enqueue_s))
                result["complete"] = complete and enqueued == args.jobs
                result["redispatched"] = sum(redispatched)
                finished = max(1, result["finished"])
                result["per_job"] = {
                    "this_process_statements": round(sql.statements / finished, 2),
                    "this_process_checkouts": round(sql.checkouts / finished, 2),
                    "db_transactions_all_clients": round(xacts / finished, 2),
                }
                if workers is not None:
                    await asyncio.to_thread(workers.stop)
        finally:
            if workers is not None:
                await asyncio.to_thread(workers.stop)
            if backend != "inprocess":
                await asyncio.to_thread(purge, backend, args)
    if not result["complete"]:
        log(f"    TIME LIMIT ({args.time_limit:.0f} s): figures are partial")
    log(
        f"    {result['finished']}/{result['enqueued']} finished, {result['jobs_per_s']} jobs/s, "
        f"start p50 {result['start_latency_p50_ms']} ms, p99 {result['start_latency_p99_ms']} ms"
    )
    return result


async def part_a(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    secret = secrets.token_urlsafe(32)
    return [await bench_backend(b, args, workdir, secret) for b in args.backends]


# --------------------------------------------------------------------------- part B


def raise_nofile(wanted: int) -> list[int]:
    """Raise this process's soft open-files limit (children inherit it) toward ``wanted``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return list(resource.getrlimit(resource.RLIMIT_NOFILE))


async def admin_token(app: Any) -> str:
    async with app.state.context.database.session() as session:
        admin = await get_user(session, "admin")
        _, token = await create_token(
            session, admin, name="bench", expires_in_days=1, role=None, ceiling=Role.ADMIN
        )
    return token


async def add_hosts(client: httpx.AsyncClient, fleet: Fleet) -> None:
    for server in fleet.servers:
        response = await client.post(
            "/api/v1/hosts",
            json={
                "name": server.name,
                "address": server.address,
                "port": server.port,
                "user": "root",
                "tags": [TAG],
                "key_file": str(fleet.client_key),
                "host_key": server.host_key,
            },
        )
        if response.status_code != 201:
            raise BenchError(f"creating host {server.name}: {response.text[:300]}")


def host_results(parent: Row[Any], children: Sequence[Row[Any]], hosts: int) -> list[Any]:
    """Every host's result: from the parent job, else gathered from its child jobs."""
    results = (as_json(parent.result) or {}).get("results") or []
    if len(results) != hosts:
        merged = {r["host"]: r for r in results}
        for child in children:
            for r in (as_json(child.result) or {}).get("results") or []:
                merged[r["host"]] = r
        results = list(merged.values())
    return results


async def timed_run(
    client: httpx.AsyncClient, monitor: AsyncEngine, workers: Workers, hosts: int
) -> dict[str, Any]:
    """One async run of ``uptime`` on every host, to the end of its last job."""
    body = {
        "argv": ["uptime"],
        "targets": [f"tag:{TAG}"],
        "timeout": HOST_TIMEOUT,
        "async": True,
    }
    start = time.perf_counter()
    response = await client.post("/api/v1/runs", json=body)
    if response.status_code != 202:
        raise BenchError(f"async run: HTTP {response.status_code}: {response.text[:500]}")
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + RUN_JOB_TIMEOUT
    while True:
        (parent,) = await wait_jobs(
            monitor, [job_id], max(1.0, deadline - time.monotonic()), workers, poll=0.02
        )
        children = await job_rows(
            monitor,
            "created_at >= :created AND id != :id AND kind != 'noop'",
            created=parent.created_at,
            id=job_id,
        )
        if all(c.state in FINISHED for c in children):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"child jobs of {job_id} not finished after {RUN_JOB_TIMEOUT} s")
        await asyncio.sleep(0.02)
    wall = time.perf_counter() - start
    if parent.state != "succeeded":
        raise BenchError(f"run job {job_id} {parent.state}: {parent.error}")
    failed = [c for c in children if c.state != "succeeded"]
    if failed:
        raise BenchError(
            f"child job {failed[0].id} ({failed[0].kind}) {failed[0].state}: {failed[0].error}"
        )
    results = host_results(parent, children, hosts)
    bad = [r for r in results if r["status"] != "ok" or "load average" not in r["stdout"]]
    if len(results) != hosts or bad:
        detail = bad[0] if bad else f"{len(results)} host results"
        raise BenchError(f"run job {job_id}: not all hosts ok: {str(detail)[:400]}")
    everything = [parent, *children]
    end = max(r.finished_at for r in everything)
    return {
        "seconds": (end - parent.created_at).total_seconds(),
        "wall_s": wall,
        "start_latency_s": (parent.started_at - parent.created_at).total_seconds(),
        "child_jobs": len(children),
        "part_start_delay_max_s": max(
            ((c.started_at - c.created_at).total_seconds() for c in children if c.started_at),
            default=None,
        ),
        "child_kinds": dict(collections.Counter(c.kind for c in children)),
        "worker_pids": sorted({p for r in everything if (p := worker_pid(r.worker)) is not None}),
    }


async def probe(
    client: httpx.AsyncClient,
    jobs: JobService,
    monitor: AsyncEngine,
    workers: Workers,
    hosts: int,
) -> dict[str, Any]:
    """One run on one fresh worker (with ``workers.env``): does it finish, and how fast?"""
    await asyncio.to_thread(workers.start, 1)
    try:
        await warm_up(jobs, monitor, workers, per_worker=8)
        run = await timed_run(client, monitor, workers, hosts)
    except BenchError as exc:
        return {"ok": False, "error": str(exc)}
    finally:
        await asyncio.to_thread(workers.stop)
    return {
        "ok": True,
        "seconds": round(run["seconds"], 3),
        "child_jobs": run["child_jobs"],
        "part_start_delay_max_s": run["part_start_delay_max_s"],
    }


async def choose_workarounds(
    args: argparse.Namespace,
    settings: Settings,
    client: httpx.AsyncClient,
    jobs: JobService,
    monitor: AsyncEngine,
    workers: Workers,
) -> tuple[set[str], dict[str, Any]]:
    """Probe the shipped code (then with each needed fix); pick what the rounds run with."""
    hosts = len((await client.get("/api/v1/hosts")).json()) - 1  # minus the built-in local
    probes: dict[str, Any] = {}
    chosen: set[str] = set()
    workers.env = worker_env(settings)
    probes["as shipped"] = shipped = await probe(client, jobs, monitor, workers, hosts)
    log(f"  probe, as shipped, 1 worker: {shipped}")
    if args.workarounds != "auto":
        return {w for w in args.workarounds.split(",") if w and w != "none"}, probes
    if not shipped["ok"] and "could not append an event" in shipped["error"]:
        chosen.add("events")
        workers.env = worker_env(settings, chosen)
        probes["events"] = shipped = await probe(client, jobs, monitor, workers, hosts)
        log(f"  probe, events serialized, 1 worker: {shipped}")
    if shipped["ok"] and (shipped.get("part_start_delay_max_s") or 0) > 5:
        chosen.add("dispatch")
    return chosen, probes


def summary(values: Sequence[float]) -> dict[str, float | int]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


async def part_b(args: argparse.Namespace, fleet: Fleet, workdir: Path) -> dict[str, Any]:
    hosts = len(fleet.servers)
    secret = secrets.token_urlsafe(32)
    run_kinds = sorted(k for k in KINDS if k.startswith("run"))
    samples: dict[str, dict[str, list[float]]] = {
        str(n): {"first": [], "second": []} for n in (1, 2)
    }
    runs: list[dict[str, Any]] = []
    async with pg_schema(args.pg_url, "bench_jobs") as (schema, monitor):
        await asyncio.to_thread(flush_redis, args.redis_url)
        settings = tend_settings(
            args,
            workdir,
            schema,
            secret,
            jobs="celery",
            broker_url=args.redis_url,
            fanout_concurrency=hosts,
            ssh_key_file=fleet.client_key,
        )
        workers = Workers(worker_env(settings), workdir, args.worker_concurrency, "default")
        try:
            async with app_running(settings) as app:
                jobs: JobService = app.state.context.jobs
                token = await admin_token(app)
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://tend.bench",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60.0,
                ) as client:
                    await add_hosts(client, fleet)
                    chosen, probes = await choose_workarounds(
                        args, settings, client, jobs, monitor, workers
                    )
                    workers.env = worker_env(settings, chosen)
                    log(f"  measuring with workarounds: {sorted(chosen) or 'none'}")
                    for index in range(args.rounds):
                        order = (1, 2) if index % 2 == 0 else (2, 1)
                        for count in order:
                            await asyncio.to_thread(workers.start, count)
                            try:
                                await warm_up(jobs, monitor, workers, per_worker=8)
                                first = await timed_run(client, monitor, workers, hosts)
                                second = await timed_run(client, monitor, workers, hosts)
                            finally:
                                await asyncio.to_thread(workers.stop)
                            samples[str(count)]["first"].append(first["seconds"])
                            samples[str(count)]["second"].append(second["seconds"])
                            runs.append(
                                {
                                    "round": index + 1,
                                    "workers": count,
                                    "first": first,
                                    "second": second,
                                }
                            )
                            log(
                                f"  round {index + 1}, {count} worker(s): first "
                                f"{first['seconds']:.3f} s, second {second['seconds']:.3f} s, "
                                f"child jobs {first['child_jobs']}, workers used "
                                f"{len(first['worker_pids'])}/{len(second['worker_pids'])}"
                            )
        finally:
            await asyncio.to_thread(workers.stop)
            await asyncio.to_thread(flush_redis, args.redis_url)
    stats = {n: {k: summary(v) for k, v in per.items()} for n, per in samples.items()}
    split_seen = any(r["first"]["child_jobs"] or r["second"]["child_jobs"] for r in runs)
    return {
        "hosts": hosts,
        "probes": probes,
        "workarounds": sorted(chosen),
        "endpoints": (
            f"{fleet.servers[0].address}-{fleet.servers[-1].address}:{fleet.servers[0].port}"
            if fleet.loopback_aliases
            else f"127.0.0.1 ports {fleet.servers[0].port}-{fleet.servers[-1].port}"
        ),
        "rounds": args.rounds,
        "worker_concurrency": args.worker_concurrency,
        "fanout_concurrency": hosts,
        "run_kinds": run_kinds,
        "splitting_kind_registered": "run.part" in KINDS,
        "splitting_observed": split_seen,
        "runs": runs,
        "summary": stats,
        "ratio_2_over_1": {
            k: stats["2"][k]["median"] / stats["1"][k]["median"] for k in ("first", "second")
        },
    }


def run_part_b(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if not sshd_available():
        raise BenchError(f"{SSHD} is missing; install it: {INSTALL_HINT}")
    nofile = raise_nofile(4 * args.hosts + 1024)
    count = args.hosts
    notes: list[str] = []
    while True:
        try:
            with sshd_fleet(count) as fleet:
                log(f"  {count} sshd servers up ({fleet.directory}); open files limit {nofile}")
                result = asyncio.run(part_b(args, fleet, workdir))
                result["notes"] = notes
                return result
        except FleetError as exc:
            if count <= 25:
                raise
            notes.append(f"{count} sshd servers failed ({exc}); retried with {count // 2}")
            log(f"  {notes[-1]}")
            count //= 2


# --------------------------------------------------------------------------- report


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:.1f} ms"


def print_part_a(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"Part A: {args.jobs} noop jobs per backend, PostgreSQL state, enqueued by "
        f"{args.enqueue_concurrency} coroutines; latency = started_at - created_at"
    )
    print(
        "backend         | finished    | jobs/s | enqueue/s | start p50 | start p99 | "
        "idle p50 | idle p99 | re-sent"
    )
    print(
        "----------------+-------------+--------+-----------+-----------+-----------+"
        "----------+----------+--------"
    )
    for r in rows:
        done = f"{r['finished']}/{r['enqueued']}" + ("" if r["complete"] else "*")
        print(
            f"{r['backend']:<15} | {done:<11} | {r['jobs_per_s'] or 0:6.0f} | "
            f"{r['enqueue_per_s'] or 0:9.0f} | {fmt_ms(r['start_latency_p50_ms']):>9} | "
            f"{fmt_ms(r['start_latency_p99_ms']):>9} | {fmt_ms(r['idle'].get('p50_ms')):>8} | "
            f"{fmt_ms(r['idle'].get('p99_ms')):>8} | {r['redispatched']}"
        )
    if any(not r["complete"] for r in rows):
        print(f"* stopped at the time limit ({args.time_limit:.0f} s): partial figures")
    print()
    print("CPU during the burst, ms per finished job (machine busy % of all CPUs)")
    groups = ("bench+api", "workers", "postgresql", "redis", "rabbitmq", "other")
    print("backend         | " + " | ".join(f"{g:>10}" for g in groups) + " | busy")
    for r in rows:
        cpu = r["cpu"]["cpu_s"]
        per = [1000 * cpu.get(g, 0.0) / max(1, r["finished"]) for g in groups]
        cells = " | ".join(f"{v:10.2f}" for v in per)
        print(f"{r['backend']:<15} | {cells} | {r['cpu']['machine_busy_pct']}%")
    print()
    print("per finished job: SQL statements / pool checkouts (pre-ping each) in this process")
    print("(enqueue + run for inprocess, enqueue only for Celery), PostgreSQL transactions (all)")
    for r in rows:
        per, top = r["per_job"], r["cpu"]["other_top_cpu_s"]
        print(
            f"{r['backend']:<15} | {per['this_process_statements']:5.1f} stmt | "
            f"{per['this_process_checkouts']:4.1f} checkouts | "
            f"{per['db_transactions_all_clients']:5.1f} xacts | other CPU: {top}"
        )


def print_part_b(result: dict[str, Any]) -> None:
    print()
    print(
        f"Part B: `uptime` on {result['hosts']} sshd hosts as ONE async run job, Celery+Redis, "
        f"workers x {result['worker_concurrency']} threads, fan-out {result['fanout_concurrency']}"
    )
    parts = sorted({r[k]["child_jobs"] for r in result["runs"] for k in ("first", "second")})
    print(
        "splitting into part jobs: "
        + (
            f"yes, {'/'.join(map(str, parts))} parts per run"
            if result["splitting_observed"]
            else "no"
        )
        + f" (job kinds: {result['run_kinds']})"
    )
    for name, p in result["probes"].items():
        outcome = (
            f"ok, {p['seconds']:.3f} s, {p['child_jobs']} parts, parts started up to "
            f"{p['part_start_delay_max_s'] or 0:.1f} s after enqueue"
            if p["ok"]
            else f"FAILED: {p['error'][:150]}"
        )
        print(f"probe ({name}, 1 worker): {outcome}")
    print(f"figures below with the bench's workarounds: {result['workarounds'] or 'none'}")
    print("workers | first run, fresh workers  | second run, same workers")
    print("--------+---------------------------+--------------------------")
    for n in ("1", "2"):
        cells = []
        for k in ("first", "second"):
            s = result["summary"][n][k]
            cells.append(f"{s['median']:6.3f} s ({s['min']:.3f}-{s['max']:.3f})")
        print(f"{n:>7} | {cells[0]:<25} | {cells[1]}")
    two = [r for r in result["runs"] if r["workers"] == 2]
    same = sum(r["first"]["worker_pids"] == r["second"]["worker_pids"] for r in two)
    print(
        f"with 2 workers the second run ran on the first run's (warm) worker in {same}/{len(two)} "
        "rounds; each run used "
        + "/".join(str(len(r[k]["worker_pids"])) for r in two for k in ("first", "second"))
        + " worker(s)"
    )
    ratio = result["ratio_2_over_1"]
    print(
        f"ratio 2 workers / 1 worker (medians): first {ratio['first']:.2f}x, "
        f"second {ratio['second']:.2f}x  (< 1: two workers faster)"
    )


def print_header(result: dict[str, Any]) -> None:
    mach, ver = result["machine"], result["versions"]
    print()
    print(f"date      : {result['date']}, tend at {ver['tend_source']}")
    print(
        f"machine   : {mach['cpus']} CPUs, {mach['cpu_model']}, {mach['memory_gib']} GiB, "
        f"{mach['kernel']}, load {mach['loadavg_at_start']} at start (everything shares it)"
    )
    print(
        f"versions  : tend {ver['tend']}, celery {ver['celery']}, kombu {ver['kombu']}, "
        f"redis-server {ver['redis-server']}, rabbitmq {ver['rabbitmq']}, "
        f"PostgreSQL {ver['postgresql']}, python {ver['python']}"
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--parts", default="a,b", help="a (no-op jobs), b (run job), or a,b")
    parser.add_argument("--jobs", type=int, default=10_000, help="no-op jobs per backend")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (part A)")
    parser.add_argument("--worker-concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--inprocess-concurrency", type=int, default=8, help="embedded runner")
    parser.add_argument("--enqueue-concurrency", type=int, default=32)
    parser.add_argument("--idle-jobs", type=int, default=20, help="one-at-a-time jobs")
    parser.add_argument("--time-limit", type=float, default=600.0, help="per backend, s")
    parser.add_argument("--hosts", type=int, default=200, help="sshd servers for part B")
    parser.add_argument("--rounds", type=int, default=3, help="part B rounds")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="TEND_JOB_HEARTBEAT")
    parser.add_argument("--queue", default="default", help="Celery queue of part A")
    parser.add_argument(
        "--workarounds",
        default="auto",
        help="part B worker patches: auto (what the probes show is needed), none, or some of "
        "events,dispatch",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON_OUT)
    args = parser.parse_args(argv)
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not args.parts <= {"a", "b"} or not args.parts:
        parser.error("--parts takes a, b or a,b")
    if not set(args.backends) <= set(BACKENDS):
        parser.error(f"--backends takes some of {','.join(BACKENDS)}")
    if not 1 <= args.jobs <= 1_000_000 or not 1 <= args.workers <= 16:
        parser.error("--jobs must be 1-1000000, --workers 1-16")
    if args.workarounds != "auto" and not set(args.workarounds.split(",")) <= {
        "none",
        "events",
        "dispatch",
    }:
        parser.error("--workarounds takes auto, none, or some of events,dispatch")
    if not 1 <= args.hosts <= 250 or not 1 <= args.rounds <= 20:
        parser.error("--hosts must be 1-250, --rounds 1-20")
    if not 10 <= args.time_limit <= 3600 or not 1 <= args.enqueue_concurrency <= 256:
        parser.error("--time-limit must be 10-3600 s, --enqueue-concurrency 1-256")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    result: dict[str, Any] = {
        "benchmark": "jobs",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(args),
        "config": {
            k: sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in {"pg_url", "redis_url", "amqp_url"}
        },
    }
    try:
        result["versions"]["postgresql"] = asyncio.run(postgres_version(args.pg_url))
        with tempfile.TemporaryDirectory(prefix="tend-bench-jobs-") as tmp:
            workdir = Path(tmp)
            if "a" in args.parts:
                log(f"part A: {args.jobs} noop jobs per backend ({', '.join(args.backends)})")
                result["part_a"] = asyncio.run(part_a(args, workdir))
            if "b" in args.parts:
                log(f"part B: uptime on {args.hosts} sshd hosts as one job, 1 vs 2 workers")
                result["part_b"] = run_part_b(args, workdir)
    except (BenchError, FleetError) as exc:
        print(f"jobs: FAILED: {exc}", file=sys.stderr)
        return 1
    result["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print_header(result)
    if "part_a" in result:
        print_part_a(result["part_a"], args)
    if "part_b" in result:
        print_part_b(result["part_b"])
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nJSON: {args.json_out}  (took {result['elapsed_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
