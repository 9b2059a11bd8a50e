#!/usr/bin/env python3
"""Benchmark: one ``tend serve`` collecting 200 SSH hosts every 10 s — CPU and missed intervals.

It starts ``--hosts`` (200) real OpenSSH servers on loopback (``bench/sshd_fleet.py``; fewer when
that many cannot start, and it says why), then ``tend serve`` as a subprocess on a free
127.0.0.1 port with a fresh data directory (SQLite; or a fresh PostgreSQL schema with
``--database-url``) and ``TEND_MONITOR_INTERVAL=--interval``. It signs in as the first admin and
registers the fleet with one ``POST /api/v1/hosts/import`` (pinned host keys, the fleet's client
key). The server's own monitor loop then collects every host (one SSH round trip per host per
interval: ``RemoteCollector`` through the read-only probe).

Measured:

- **server CPU**: user + system time of the server process (and any descendant) from
  ``/proc/PID/stat``, sampled every interval during the steady window only — which starts once
  every host has had a successful collection plus ``--warmup-intervals`` (1) more — for
  ``--minutes`` (3). Cores = CPU seconds / wall seconds, per interval (median, max) and over the
  window. Target: <= 1 core.
- **missed intervals**: every host's successful collections (``host_up = 1`` rows of
  ``metric_samples``, timestamped when the collection started), from its first success to the end
  of the window; a gap > 1.5 x interval between two of them, or from the last one to the end,
  is a missed interval. Gap p50 / p99 / max, hosts up at the end, failed collections. Target: 0.
- for context: the server's run-queue wait (``/proc/PID/task/*/schedstat``: seconds per second its
  runnable threads waited for a CPU, i.e. how much other processes were in its way), the sshd
  side's CPU (listeners, per-connection processes and the probe commands they run), the whole
  machine's busy cores (everything shares it), successful collections per interval, sample rows
  written per interval, the server's RSS, the size of one probe's output, the server's warnings
  and errors by message (and which periodic job was running when they happened), the periodic
  jobs' run times, and how long the server takes to stop after SIGINT.

On loopback every "remote" host is this machine: each probe reads its whole process table (the
fleet's own hundreds of sshd processes included) and every probe's commands run on the same CPUs
as the server. ``--pid-namespace`` runs each sshd in its own PID namespace with its own /proc (a
few processes per host); ``--nice -10`` gives the fleet and the server priority over unrelated
work on a shared machine.

It prints a table and a verdict, writes JSON, stops every process it started and exits by
itself; the exit code is 1 only when the setup fails (no fleet, no server, no host ever
collected), not when a target is missed.

Usage::

    .venv/bin/python bench/monitor_fleet.py [--hosts 200] [--minutes 3] [--interval 10]
        [--warmup-intervals 1] [--database-url URL] [--pid-namespace] [--nice N]
        [--monitor-concurrency N] [--settle S] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import itertools
import json
import math
import os
import platform
import re
import resource
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Sibling scripts, importable once bench/ is on the path.
import sshd_fleet as fleet_module
from hosts_list import (
    PASSWORD_LINE,
    BackendUnavailable,
    BenchError,
    Server,
    clean_env,
    cpu_model,
    create_schema,
    drop_schema,
    expect,
    log,
)
from sshd_fleet import INSTALL_HINT, Fleet, FleetError, sshd_available, sshd_fleet
from tend.db import Database
from tend.jobs.models import Job
from tend.monitoring.collectors.probe import PROBE_ARGV
from tend.monitoring.models import HostStatus, MetricSample
from tend.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON_OUT = BENCH_DIR / "results" / "monitor_fleet.json"
TICKS = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
TAG = "monitor-bench"
TARGET_CORES = 1.0
MISSED_FACTOR = 1.5  # a gap longer than this many intervals is a missed interval
FALLBACK_SIZES = (150, 100, 50)  # tried in turn when the requested fleet cannot start
HTTP_TIMEOUT = 60.0  # the import of 200 hosts is one transaction
POLL_SECONDS = 1.0
MAX_EVENTS = 5000
STOP_TIMEOUT = 60.0  # graceful stop of the server (200 SSH connections to close)
PROBE_SSH_TIMEOUT = 30.0
UNSHARE = Path("/usr/bin/unshare")


# --------------------------------------------------------------------------- /proc accounting


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_table() -> dict[int, list[str]]:
    """Every live process's ``/proc/PID/stat`` fields after the command name, by PID."""
    table: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                table[int(entry.name)] = fields
    return table


def tree_cpu(roots: Iterable[int], table: dict[int, list[str]]) -> float:
    """CPU seconds of ``roots`` and their live descendants, including children they reaped.

    Fields (after the name): [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime. A child
    that exits moves its time into its parent's ``cutime``/``cstime`` when reaped, so the sum
    over the live tree only grows.
    """
    children: dict[int, list[int]] = {}
    for pid, fields in table.items():
        children.setdefault(int(fields[1]), []).append(pid)
    total = 0
    queue = [pid for pid in roots if pid in table]
    while queue:
        pid = queue.pop()
        fields = table[pid]
        total += sum(int(v) for v in fields[11:15])
        queue.extend(children.get(pid, []))
    return total / TICKS


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat (idle and iowait count as not busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - values[3] - values[4], total


def run_queue_wait(pid: int) -> float:
    """Seconds the threads of ``pid`` have waited for a CPU while runnable (schedstat)."""
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


@dataclass
class CpuPoint:
    """One reading of every CPU counter the benchmark follows."""

    wall: float
    server: float
    sshd: float
    bench: float
    machine_busy: int
    machine_total: int
    processes: int
    server_wait: float


def read_point(server_pid: int, sshd_pids: list[int]) -> CpuPoint:
    table = process_table()
    busy, total = machine_jiffies()
    own = os.times()
    return CpuPoint(
        wall=time.monotonic(),
        server=tree_cpu([server_pid], table),
        sshd=tree_cpu(sshd_pids, table),
        bench=own.user + own.system,
        machine_busy=busy,
        machine_total=total,
        processes=len(table),
        server_wait=run_queue_wait(server_pid),
    )


def interval_cores(a: CpuPoint, b: CpuPoint) -> dict[str, float]:
    """Cores used between two readings, per group."""
    wall = b.wall - a.wall
    total = b.machine_total - a.machine_total
    machine = NCPU * (b.machine_busy - a.machine_busy) / total if total else 0.0
    server, sshd, bench = (
        (b.server - a.server) / wall,
        (b.sshd - a.sshd) / wall,
        (b.bench - a.bench) / wall,
    )
    return {
        "server": server,
        "server_wait": (b.server_wait - a.server_wait) / wall,
        "sshd": sshd,
        "bench": bench,
        "machine": machine,
        "other": max(0.0, machine - server - sshd - bench),
    }


# --------------------------------------------------------------------------- fleet


@contextlib.contextmanager
def pid_namespace_sshd(enabled: bool, workdir: Path) -> Iterator[None]:
    """Optionally run every sshd in its own PID namespace with its own /proc.

    Then each "remote" host's probe sees only that sshd's processes (a few) instead of this
    machine's whole process table (hundreds, with the fleet itself). ``sshd_fleet`` starts
    ``fleet_module.SSHD``; it points at a wrapper for the duration of the block.
    """
    if not enabled:
        yield
        return
    if not UNSHARE.is_file():
        raise FleetError(f"{UNSHARE} is missing (util-linux); needed by --pid-namespace")
    wrapper = workdir / "sshd-in-pid-namespace"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec {UNSHARE} --pid --fork --mount-proc --kill-child {fleet_module.SSHD} "$@"\n'
    )
    wrapper.chmod(0o755)
    original = fleet_module.SSHD
    fleet_module.SSHD = wrapper
    try:
        yield
    finally:
        fleet_module.SSHD = original


def raise_nofile(wanted: int) -> list[int]:
    """Raise the soft open-files limit (the server and the sshd inherit it) toward ``wanted``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return list(resource.getrlimit(resource.RLIMIT_NOFILE))


def probe_output(fleet: Fleet) -> dict[str, Any]:
    """Run the monitor's probe once with the OpenSSH client on the first host; measure it."""
    server = fleet.servers[0]
    argv = [
        "ssh",
        "-i",
        str(fleet.client_key),
        "-p",
        str(server.port),
        "-o",
        f"UserKnownHostsFile={fleet.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        f"root@{server.address}",
        shlex.join(PROBE_ARGV),
    ]
    try:
        out = subprocess.run(
            argv,
            capture_output=True,
            timeout=PROBE_SSH_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    text = out.stdout.decode("utf-8", errors="replace")
    procs = text.split("@@tend:procs\n", 1)[-1].split("@@tend:end", 1)[0]
    return {
        "bytes": len(out.stdout),
        "process_lines": sum(1 for line in procs.splitlines() if line.strip()),
        "exit_code": out.returncode,
    }


# --------------------------------------------------------------------------- server setup


EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Timeout|Refused)\b.*?:")


def cause_of(text: str) -> str:
    """The last ``SomeError: message`` line of a traceback (or the text's first line)."""
    lines = [line for line in text.splitlines() if EXCEPTION_LINE.match(line)]
    return (lines[-1] if lines else text.splitlines()[0])[:200]


class LoggingServer(Server):
    """``tend serve`` whose warnings and errors are counted by message (and by their cause)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        super().__init__(env, cwd)
        self.problems: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[str, datetime]] = []  # (problem, when), the first MAX_EVENTS

    def _read_stderr(self, stream: TextIO) -> None:
        for line in stream:
            match = PASSWORD_LINE.match(line)
            if match:
                self.password = match.group(1)
                self._password_seen.set()
                continue
            self._stderr.append(line.rstrip("\n"))
            self._count(line)

    def _count(self, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return
        if not isinstance(record, dict) or record.get("level") not in ("warning", "error"):
            return
        message = str(record.get("msg", "")).split("\n", 1)[0][:160]
        key = f"{record['level']} {record.get('logger', '?')}: {message}"
        entry = self.problems.setdefault(
            key, {"count": 0, "first": record.get("ts"), "last": None, "causes": Counter()}
        )
        entry["count"] += 1
        entry["last"] = record.get("ts")
        with contextlib.suppress(TypeError, ValueError):
            if len(self.events) < MAX_EVENTS:
                self.events.append((key, datetime.fromisoformat(str(record["ts"]))))
        exc = str(record.get("exc") or record.get("error") or "").strip()
        if exc:
            entry["causes"][cause_of(exc)] += 1

    def stop_timed(self, timeout: float = STOP_TIMEOUT) -> float | None:
        """SIGINT, wait up to ``timeout`` (then SIGKILL); return seconds to exit, None if killed."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"  warning: the server did not exit within {timeout:g} s of SIGINT; killing it")
            self.proc.kill()
            self.proc.wait(timeout=timeout)
            return None
        finally:
            if self._reader is not None:
                self._reader.join(timeout=2.0)
        return time.monotonic() - start

    def problem_summary(self, runs: list[tuple[str, datetime, datetime]]) -> list[dict[str, Any]]:
        """Problems by message, each with how many happened while a job of a kind was running."""
        during: dict[str, Counter[str]] = {}
        for key, when in self.events:
            kinds = {kind for kind, start, end in runs if start <= when <= end}
            during.setdefault(key, Counter()).update(kinds or {"no job running"})
        rows = [
            {
                **v,
                "message": k,
                "causes": dict(v["causes"].most_common(3)),
                "while_job_ran": dict(during.get(k, Counter())),
            }
            for k, v in self.problems.items()
        ]
        return sorted(rows, key=lambda row: -row["count"])


def register_fleet(server: Server, fleet: Fleet) -> float:
    """Sign in, create an API token and import every sshd host; return the import's seconds."""
    assert server.password is not None
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        response = client.post(
            "/api/v1/auth/token", data={"username": "admin", "password": server.password}
        )
        expect(response, 200, "sign in")
        session_auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
        response = client.post("/api/v1/tokens", json={"name": "bench"}, headers=session_auth)
        expect(response, 201, "create API token")
        auth = {"Authorization": f"Bearer {response.json()['token']}"}
        hosts = [
            {
                "name": s.name,
                "address": s.address,
                "port": s.port,
                "user": "root",
                "tags": [TAG],
                "key_file": str(fleet.client_key),
                "host_key": s.host_key,
            }
            for s in fleet.servers
        ]
        start = time.perf_counter()
        response = client.post(
            "/api/v1/hosts/import", json={"hosts": hosts, "on_conflict": "error"}, headers=auth
        )
        elapsed = time.perf_counter() - start
        expect(response, 200, "import hosts")
        created = response.json()["created"]
        if len(created) != len(hosts):
            raise BenchError(f"import created {len(created)} of {len(hosts)} hosts")
        return elapsed


def reader_settings(data_dir: Path, url: str | None, schema: str | None) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=url,
        database_schema=schema,
        log_level="WARNING",
    )


# --------------------------------------------------------------------------- the run


@dataclass
class Run:
    """What happened during one run (filled in as it goes)."""

    hosts: list[str]
    interval: float
    registered_at: float = 0.0
    all_up_after: float | None = None
    up_at_first_round_limit: int = 0
    window_start: datetime | None = None
    window_end: datetime | None = None
    points: list[CpuPoint] = field(default_factory=list)
    states: list[dict[str, int]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    rss_mib: float | None = None


async def hosts_with_success(database: Database, hosts: list[str]) -> int:
    query = select(func.count()).where(
        HostStatus.host.in_(hosts), HostStatus.last_success.is_not(None)
    )
    async with database.session() as session:
        return int((await session.execute(query)).scalar_one())


async def state_counts(database: Database, hosts: list[str]) -> dict[str, int]:
    query = (
        select(HostStatus.state, func.count())
        .where(HostStatus.host.in_(hosts))
        .group_by(HostStatus.state)
    )
    async with database.session() as session:
        return {str(state): int(n) for state, n in (await session.execute(query)).all()}


async def failing_reasons(database: Database, hosts: list[str]) -> Counter[str]:
    """The last error of every host currently failing, counted by text (numbers masked)."""
    query = select(HostStatus.last_error).where(
        HostStatus.host.in_(hosts), HostStatus.consecutive_failures > 0
    )
    async with database.session() as session:
        errors = (await session.execute(query)).scalars().all()
    return Counter(re.sub(r"b-\d+|\d+(\.\d+)?", "N", e or "?")[:600] for e in errors)


async def observe(
    run: Run, database: Database, args: argparse.Namespace, server_pid: int, sshd_pids: list[int]
) -> None:
    """Wait for the first round, warm up, then read the counters every interval of the window."""
    limit = run.registered_at + args.first_round_timeout
    while True:
        up = await hosts_with_success(database, run.hosts)
        if up == len(run.hosts):
            run.all_up_after = time.monotonic() - run.registered_at
            log(f"  every host collected once, {run.all_up_after:.1f} s after the import")
            break
        if time.monotonic() > limit:
            run.up_at_first_round_limit = up
            log(f"  only {up}/{len(run.hosts)} hosts collected after {args.first_round_timeout} s")
            if up == 0:
                raise BenchError("no host was ever collected")
            break
        await asyncio.sleep(POLL_SECONDS)
    await asyncio.sleep(args.warmup_intervals * run.interval)
    intervals = max(1, round(args.minutes * 60 / run.interval))
    run.window_start = datetime.now(UTC)
    run.points.append(read_point(server_pid, sshd_pids))
    start = run.points[0].wall
    for index in range(1, intervals + 1):
        await asyncio.sleep(max(0.0, start + index * run.interval - time.monotonic()))
        run.points.append(read_point(server_pid, sshd_pids))
        run.states.append(await state_counts(database, run.hosts))
        run.errors.update(await failing_reasons(database, run.hosts))
        cores = interval_cores(run.points[-2], run.points[-1])
        log(
            f"  interval {index}/{intervals}: server {cores['server']:.2f} cores, sshd "
            f"{cores['sshd']:.2f}, machine {cores['machine']:.2f}; hosts {run.states[-1]}"
        )
    run.window_end = datetime.now(UTC)
    run.rss_mib = rss_mib(server_pid)


async def collections(database: Database, run: Run) -> dict[str, Any]:
    """Read what the loop stored: successes per host, failures and sample rows in the window."""
    assert run.window_start is not None
    assert run.window_end is not None
    ok_query = (
        select(MetricSample.host, MetricSample.ts)
        .where(
            MetricSample.metric == "host_up",
            MetricSample.value == 1.0,
            MetricSample.host.in_(run.hosts),
            MetricSample.ts <= run.window_end,
        )
        .order_by(MetricSample.host, MetricSample.ts)
    )
    in_window = (MetricSample.ts >= run.window_start) & (MetricSample.ts < run.window_end)
    failed_query = select(func.count()).where(
        MetricSample.metric == "host_up",
        MetricSample.value == 0.0,
        MetricSample.host.in_(run.hosts),
        in_window,
    )
    rows_query = select(func.count()).where(MetricSample.host.in_(run.hosts), in_window)
    jobs_query = select(
        Job.kind, Job.state, Job.started_at, Job.finished_at, Job.error, Job.created_at
    )
    async with database.session() as session:
        all_jobs = (await session.execute(jobs_query)).all()
        successes: dict[str, list[datetime]] = {host: [] for host in run.hosts}
        for host, ts in (await session.execute(ok_query)).all():
            successes[host].append(ts)
        failed = int((await session.execute(failed_query)).scalar_one())
        rows = int((await session.execute(rows_query)).scalar_one())
    return {
        "successes": successes,
        "failed_in_window": failed,
        "rows_in_window": rows,
        "jobs_in_window": job_summary(
            [j[:5] for j in all_jobs if run.window_start <= j.created_at < run.window_end]
        ),
        "job_runs": [
            (j.kind, j.started_at, j.finished_at or j.started_at)
            for j in all_jobs
            if j.started_at is not None
        ],
    }


def job_summary(jobs: Iterable[Any]) -> dict[str, Any]:
    """Periodic jobs of the window by kind: states, run time median and max, error causes."""
    kinds: dict[str, dict[str, Any]] = {}
    for kind, state, started, finished, error in jobs:
        entry = kinds.setdefault(kind, {"states": Counter(), "seconds": [], "errors": Counter()})
        entry["states"][state] += 1
        if started is not None and finished is not None:
            entry["seconds"].append((finished - started).total_seconds())
        if error:
            entry["errors"][cause_of(error)] += 1
    return {
        kind: {
            "states": dict(e["states"]),
            "seconds_median": statistics.median(e["seconds"]) if e["seconds"] else None,
            "seconds_max": max(e["seconds"]) if e["seconds"] else None,
            "errors": dict(e["errors"].most_common(3)),
        }
        for kind, e in sorted(kinds.items())
    }


def gap_figures(
    successes: dict[str, list[datetime]], end: datetime, interval: float
) -> dict[str, Any]:
    """Gaps between each host's consecutive successes (and to the end); missed intervals."""
    limit = MISSED_FACTOR * interval
    gaps: list[float] = []
    long_gaps: list[dict[str, Any]] = []
    missed = 0
    never = [host for host, times in successes.items() if not times]
    for host, times in successes.items():
        if not times:
            continue
        host_gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        trailing = (end - times[-1]).total_seconds()
        gaps.extend(host_gaps)
        for gap in [*host_gaps, trailing]:
            if gap > limit:
                missed += max(1, round(gap / interval) - 1)
                long_gaps.append({"host": host, "seconds": round(gap, 2)})
    gaps.sort()
    return {
        "gaps": len(gaps),
        "gap_p50": percentile(gaps, 50),
        "gap_p99": percentile(gaps, 99),
        "gap_min": gaps[0] if gaps else None,
        "gap_max": gaps[-1] if gaps else None,
        "missed_intervals": missed,
        "long_gaps": sorted(long_gaps, key=lambda g: -g["seconds"])[:20],
        "hosts_never_collected": never,
    }


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]


def cpu_figures(points: list[CpuPoint]) -> dict[str, Any]:
    per = [interval_cores(a, b) for a, b in itertools.pairwise(points)]
    whole = interval_cores(points[0], points[-1])
    groups = ("server", "server_wait", "sshd", "bench", "machine", "other")
    return {
        "per_interval": per,
        "median": {g: statistics.median(p[g] for p in per) for g in groups},
        "max": {g: max(p[g] for p in per) for g in groups},
        "window": whole,
        "server_cpu_seconds": points[-1].server - points[0].server,
        "window_seconds": points[-1].wall - points[0].wall,
        "processes_on_machine": statistics.median(p.processes for p in points),
    }


# --------------------------------------------------------------------------- one run, end to end


def backend_env(args: argparse.Namespace, data_dir: Path) -> tuple[dict[str, str], str, str | None]:
    """Server environment for the database; returns (env, description, schema)."""
    env = {"TEND_DATA_DIR": str(data_dir)}
    if not args.database_url:
        return env, "SQLite file in a fresh temp dir", None
    schema = f"bench_{secrets.token_hex(6)}"
    try:
        version = create_schema(args.database_url, schema)
    except BackendUnavailable as exc:
        raise BenchError(str(exc)) from exc
    env.update({"TEND_DATABASE_URL": args.database_url, "TEND_DATABASE_SCHEMA": schema})
    return env, f"{version}, schema {schema} (dropped afterwards)", schema


def bench_fleet(args: argparse.Namespace, fleet: Fleet, workdir: Path) -> dict[str, Any]:
    """Start the server on the fleet, observe it, read the results back; always clean up."""
    data_dir = workdir / "tend-data"
    env, database_text, schema = backend_env(args, data_dir)
    server: LoggingServer | None = None
    try:
        env.update(
            {
                "TEND_LOG_LEVEL": "WARNING",
                "TEND_ACCESS_LOG": "false",
                "TEND_MONITOR_INTERVAL": f"{args.interval:g}",
                "TEND_SSH_KEY_FILE": str(fleet.client_key),
            }
        )
        if args.monitor_concurrency:
            env["TEND_MONITOR_CONCURRENCY"] = str(args.monitor_concurrency)
        server = LoggingServer(clean_env(env), cwd=workdir)
        log(f"  starting tend serve on {server.base_url} ({database_text})")
        server.start()
        assert server.proc is not None
        hosts = [s.name for s in fleet.servers]
        run = Run(hosts=hosts, interval=args.interval)
        import_seconds = register_fleet(server, fleet)
        run.registered_at = time.monotonic()
        log(f"  {len(hosts)} hosts imported in {import_seconds:.2f} s; waiting for the first round")
        sshd_pids = [s.process.pid for s in fleet.servers if s.process is not None]
        settings = reader_settings(data_dir, args.database_url, schema)
        result = asyncio.run(_observe_and_read(run, settings, args, server, sshd_pids))
        probe = probe_output(fleet)
        stop_seconds = server.stop_timed()
        stderr_tail = server.stderr_tail()
    finally:
        if server is not None:
            server.stop()
        if schema is not None:
            drop_schema(args.database_url, schema)
    assert run.window_end is not None
    return {
        "database": database_text,
        "tend_version": server.version,
        "import_seconds": import_seconds,
        "first_round_seconds": run.all_up_after,
        "up_at_first_round_limit": run.up_at_first_round_limit,
        "window_start": run.window_start.isoformat() if run.window_start else None,
        "window_end": run.window_end.isoformat(),
        "cpu": cpu_figures(run.points),
        "states_per_interval": run.states,
        "states_at_end": run.states[-1] if run.states else {},
        "failing_host_errors_seen": dict(run.errors.most_common(10)),
        "server_rss_mib": run.rss_mib,
        "server_stop_seconds": stop_seconds,
        "probe_output": probe,
        "server_problems": server.problem_summary(result.pop("job_runs")),
        "server_stderr_tail": stderr_tail.splitlines()[-5:],
        **result,
    }


async def _observe_and_read(
    run: Run, settings: Settings, args: argparse.Namespace, server: Server, sshd_pids: list[int]
) -> dict[str, Any]:
    assert server.proc is not None
    database = Database.from_settings(settings)
    try:
        await observe(run, database, args, server.proc.pid, sshd_pids)
        # Rounds that started in the window are written when their slowest host is done.
        await asyncio.sleep(args.settle)
        stored = await collections(database, run)
    finally:
        await database.dispose()
    assert run.window_end is not None
    successes = stored.pop("successes")
    gaps = gap_figures(successes, run.window_end, run.interval)
    intervals = len(run.points) - 1
    assert run.window_start is not None
    ok_per_interval = [0] * intervals
    for times in successes.values():
        for ts in times:
            index = int((ts - run.window_start).total_seconds() // run.interval)
            if 0 <= index < intervals:
                ok_per_interval[index] += 1
    return {
        "ok_per_interval": ok_per_interval,
        **stored,
        **gaps,
        "rows_per_interval": stored["rows_in_window"] / intervals,
        "collections_expected_in_window": len(run.hosts) * intervals,
    }


def run_with_fallback(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Run on ``--hosts`` servers, or on the largest fleet of FALLBACK_SIZES that starts."""
    notes: list[str] = []
    sizes = [args.hosts, *[n for n in FALLBACK_SIZES if n < args.hosts]]
    for count in sizes:
        with tempfile.TemporaryDirectory(prefix="tend-bench-monitor-") as tmp:
            workdir = Path(tmp)
            try:
                with pid_namespace_sshd(args.pid_namespace, workdir), sshd_fleet(count) as fleet:
                    log(f"{count} sshd servers up ({fleet.directory})")
                    result = bench_fleet(args, fleet, workdir)
                    result["hosts"] = count
                    result["endpoints"] = (
                        f"{fleet.servers[0].address}-{fleet.servers[-1].address}:"
                        f"{fleet.servers[0].port}"
                        if fleet.loopback_aliases
                        else f"127.0.0.1 ports {fleet.servers[0].port}-{fleet.servers[-1].port}"
                    )
                    return result, notes
            except FleetError as exc:
                if count == sizes[-1]:
                    raise
                notes.append(f"{count} sshd servers could not start ({exc}); tried fewer")
                log(f"  {notes[-1]}")
    raise FleetError("no fleet size could start")  # not reached: the last size re-raises


# --------------------------------------------------------------------------- report


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def verdict(result: dict[str, Any], interval: float) -> list[dict[str, Any]]:
    cpu = result["cpu"]
    up = result["states_at_end"].get("up", 0)
    return [
        {
            "check": "server CPU, median of intervals",
            "value": f"{cpu['median']['server']:.3f} cores",
            "target": f"<= {TARGET_CORES:g} core",
            "met": cpu["median"]["server"] <= TARGET_CORES,
        },
        {
            "check": "server CPU, max interval",
            "value": f"{cpu['max']['server']:.3f} cores",
            "target": f"<= {TARGET_CORES:g} core",
            "met": cpu["max"]["server"] <= TARGET_CORES,
        },
        {
            "check": f"missed intervals (gap > {MISSED_FACTOR * interval:g} s)",
            "value": str(result["missed_intervals"]),
            "target": "0",
            "met": result["missed_intervals"] == 0 and not result["hosts_never_collected"],
        },
        {
            "check": "hosts up at the end",
            "value": f"{up}/{result['hosts']}",
            "target": f"{result['hosts']}/{result['hosts']}",
            "met": up == result["hosts"],
        },
    ]


def print_report(report: dict[str, Any]) -> None:
    cfg, r = report["config"], report["result"]
    cpu = r["cpu"]
    intervals = len(cpu["per_interval"])
    probe = r["probe_output"]
    print()
    print(
        f"benchmark : {r['hosts']} SSH hosts (sshd on {r['endpoints']}) collected every "
        f"{cfg['interval']:g} s by one `tend serve` (monitor concurrency "
        f"{cfg['monitor_concurrency']}, probe timeout {cfg['monitor_timeout']:g} s)"
    )
    print(
        f"window    : {cpu['window_seconds']:.0f} s = {intervals} intervals, starting "
        f"{cfg['warmup_intervals']} interval(s) after every host's first success "
        f"({fmt_s(r['first_round_seconds'])} after the import)"
    )
    print(f"database  : {r['database']}; niceness of server and sshd: {cfg['nice']}")
    sshd_mode = "own PID namespace each" if cfg["pid_namespace"] else "shared /proc"
    print(
        f"machine   : {report['machine']['cpus']} CPUs, {report['machine']['cpu_model']}, "
        f"{report['machine']['kernel']}, load {report['machine']['loadavg_at_start']} at start; "
        "server, sshd and everything else share it"
    )
    print(
        f"probe     : {probe.get('bytes', '?')} bytes of output, "
        f"{probe.get('process_lines', '?')} process lines per host per interval ({sshd_mode}; "
        f"{cpu['processes_on_machine']:.0f} processes on the machine)"
    )
    print(f"versions  : {report['versions']}")
    print(f"date      : {report['date']}")
    for note in report["notes"]:
        print(f"  - {note}")
    print()
    print("cores used             | median | max   | whole window")
    print("-----------------------+--------+-------+-------------")
    labels = {
        "server": "tend serve",
        "server_wait": "tend serve waiting*",
        "sshd": "sshd side (all)",
        "bench": "this script",
        "other": "everything else",
        "machine": "machine busy",
    }
    for group, label in labels.items():
        print(
            f"{label:<22} | {cpu['median'][group]:6.3f} | {cpu['max'][group]:5.3f} | "
            f"{cpu['window'][group]:.3f}"
        )
    print(
        "* seconds per second the server's runnable threads waited for a CPU (schedstat): "
        "> 0.1 means other processes were in its way"
    )
    ok_in_window = r["collections_expected_in_window"] - r["failed_in_window"]
    per_collection = 1000 * cpu["server_cpu_seconds"] / max(1, ok_in_window)
    print()
    print(
        f"collections : {r['gaps']} gaps between successes; p50 {fmt_s(r['gap_p50'])}, p99 "
        f"{fmt_s(r['gap_p99'])}, min {fmt_s(r['gap_min'])}, max {fmt_s(r['gap_max'])}"
    )
    print(
        f"window      : {r['failed_in_window']} failed collections, {r['rows_per_interval']:.0f} "
        f"sample rows per interval, ~{per_collection:.1f} ms server CPU per host collection, "
        f"server RSS {r['server_rss_mib']:.0f} MiB"
    )
    print(f"ok / interval: {r['ok_per_interval']} (of {r['hosts']})")
    stop = r["server_stop_seconds"]
    print(f"server stop : {'killed' if stop is None else f'{stop:.1f} s after SIGINT'}")
    if r["long_gaps"]:
        print(f"long gaps   : {r['long_gaps'][:5]}")
    if r["hosts_never_collected"]:
        print(f"never up    : {r['hosts_never_collected'][:10]}")
    for reason, count in r["failing_host_errors_seen"].items():
        print(f"failing host: {count:4d} x (host-intervals) {reason}")
    for problem in r["server_problems"][:8]:
        print(
            f"server log  : {problem['count']:4d} x {problem['message']} {problem['causes']}; "
            f"while running: {problem['while_job_ran']}"
        )
    for kind, job in r["jobs_in_window"].items():
        print(
            f"job         : {kind}: {job['states']}, run time median "
            f"{fmt_s(job['seconds_median'])}, max {fmt_s(job['seconds_max'])} {job['errors'] or ''}"
        )
    print()
    print("check                              | value         | target    | met")
    print("-----------------------------------+---------------+-----------+----")
    for row in report["verdict"]:
        mark = "yes" if row["met"] else "NO"
        print(f"{row['check']:<34} | {row['value']:<13} | {row['target']:<9} | {mark}")
    print(f"\nverdict: {'all targets met' if report['all_met'] else 'target(s) missed'}")


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in ("tend", "asyncssh", "sqlalchemy"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [str(fleet_module.SSHD), "-V"], capture_output=True, text=True, timeout=10, check=False
        )
        found["openssh"] = (out.stderr or out.stdout).strip().splitlines()[0]
    found["python"] = platform.python_version()
    return found


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=200, help="sshd servers (1-250)")
    parser.add_argument("--minutes", type=float, default=3.0, help="measured window (3)")
    parser.add_argument("--interval", type=float, default=10.0, help="TEND_MONITOR_INTERVAL (10)")
    parser.add_argument(
        "--warmup-intervals",
        type=int,
        default=1,
        help="intervals after every host's first success before the window (1)",
    )
    parser.add_argument(
        "--first-round-timeout",
        type=float,
        default=None,
        help="seconds to wait for every host's first success (default 6 intervals + 60)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL SQLAlchemy URL (a fresh schema is created and dropped); default SQLite",
    )
    parser.add_argument(
        "--pid-namespace",
        action="store_true",
        help="run each sshd in its own PID namespace, so probes see a few processes, not all",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds to let rounds started in the window be stored before reading them "
        "(default: interval + 12)",
    )
    parser.add_argument(
        "--monitor-concurrency",
        type=int,
        default=None,
        help="TEND_MONITOR_CONCURRENCY for the server (default: tend's own default)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of this script, hence of the sshd fleet and the server it starts "
        "(e.g. -10 on a machine shared with other work; negative needs root)",
    )
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON_OUT)
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= fleet_module.MAX_HOSTS:
        parser.error(f"--hosts must be 1-{fleet_module.MAX_HOSTS}")
    if not 0.1 <= args.minutes <= 60 or not 1 <= args.interval <= 600:
        parser.error("--minutes must be 0.1-60 and --interval 1-600")
    if not 0 <= args.warmup_intervals <= 30:
        parser.error("--warmup-intervals must be 0-30")
    if args.settle is None:
        args.settle = args.interval + 12
    if args.first_round_timeout is None:
        args.first_round_timeout = 6 * args.interval + 60
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not sshd_available():
        print(f"monitor_fleet: {fleet_module.SSHD} is missing; install it: {INSTALL_HINT}")
        return 1
    machine = {
        "cpus": NCPU,
        "cpu_model": cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    nofile = raise_nofile(6 * args.hosts + 1024)
    if args.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # children inherit it
        except OSError as exc:
            print(f"monitor_fleet: cannot set niceness {args.nice}: {exc}", file=sys.stderr)
            return 1
    started = time.monotonic()
    try:
        result, notes = run_with_fallback(args)
    except (BenchError, FleetError, httpx.HTTPError, OSError) as exc:
        print(f"monitor_fleet: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if result["hosts"] < args.hosts:
        notes.append(f"ran with {result['hosts']} hosts instead of {args.hosts}")
    notes.append(
        "the inventory also holds the built-in `local` host (psutil, every interval); its "
        "cost is in the server's CPU, its collections are not counted"
    )
    report: dict[str, Any] = {
        "benchmark": "monitor_fleet",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {
            "hosts_requested": args.hosts,
            "interval": args.interval,
            "minutes": args.minutes,
            "warmup_intervals": args.warmup_intervals,
            "first_round_timeout": args.first_round_timeout,
            "pid_namespace": args.pid_namespace,
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "database": "postgresql" if args.database_url else "sqlite",
            "monitor_concurrency": args.monitor_concurrency
            or Settings.model_fields["monitor_concurrency"].default,
            "monitor_timeout": Settings.model_fields["monitor_timeout"].default,
            "nofile_limit": nofile,
        },
        "machine": machine,
        "versions": versions(),
        "notes": notes,
        "result": result,
    }
    report["verdict"] = verdict(result, args.interval)
    report["all_met"] = all(row["met"] for row in report["verdict"])
    report["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print_report(report)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nJSON: {args.json_out}  (took {report['elapsed_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
