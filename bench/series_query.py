#!/usr/bin/env python3
"""Benchmark: a 24 h series at a 1-minute step, on SQLite and PostgreSQL, with a day of data.

For each backend this builds a fresh database (SQLite file in a temp dir; PostgreSQL schema
``bench_<hex>``, dropped afterwards) through the real app lifespan (migrations included), adds
``--hosts`` hosts and writes ``--hours`` of samples every ``--interval`` seconds for every series
a typical Linux host has (~45: per-core CPU, two mounts, two disks, two interfaces, ...), ending
now, in batches with tend's own ``MetricStore.write_round``. It then runs the rollup job's code
(``roll_up``) until it has caught up, exactly as the periodic job leaves the tables.

Measured, ``--iterations`` times each after a warm-up, median and p95:

- ``http``: ``GET /api/v1/hosts/h01/series?metric=cpu_usage_percent&from=NOW-24h&to=NOW&step=60``
  through the app in this process (httpx ASGI transport, API token, JSON): what a client waits
  for minus the network;
- ``http 2 series``: the same for ``filesystem_used_percent`` (two mounts);
- ``query``: the store's query alone (``plan_query`` + ``query_series``);
- ``raw only``: the same buckets computed from raw samples (what the query would cost without
  rollups), for scale.

Every answer is checked (resolution ``1m``, step 60, 1,440-1,441 points). Target: median < 50 ms.

Usage::

    .venv/bin/python bench/series_query.py [--hosts 4] [--hours 24] [--interval 10]
        [--iterations 100] [--backends sqlite,postgresql] [--pg-url URL] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tend.app import create_app
from tend.auth.models import Role, User
from tend.auth.tokens import create_token
from tend.hosts.models import Host
from tend.monitoring.models import MetricRollupHour, MetricRollupMinute, MetricSample
from tend.monitoring.registry import Sample, Snapshot
from tend.monitoring.rollups import retention_of, roll_up
from tend.monitoring.series import Plan, plan_query, query_series
from tend.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON_OUT = BENCH_DIR / "results" / "series_query.json"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")
WARMUP = 10
ROUNDS_PER_WRITE = 60  # snapshots per host per write_round call (10 minutes at 10 s)


def host_series(rng: random.Random) -> list[tuple[str, dict[str, str], float, float]]:
    """Return (metric, labels, start value, spread) for the series of one typical host."""
    series: list[tuple[str, dict[str, str], float, float]] = [
        ("cpu_usage_percent", {}, 20, 10),
        ("cpu_iowait_percent", {}, 2, 1),
        ("cpu_steal_percent", {}, 0.5, 0.2),
        ("cpu_count", {}, 4, 0),
        ("load1", {}, 0.8, 0.3),
        ("load5", {}, 0.7, 0.1),
        ("load15", {}, 0.6, 0.05),
        ("memory_total_bytes", {}, 8e9, 0),
        ("memory_available_bytes", {}, 4e9, 1e8),
        ("memory_available_percent", {}, 50, 2),
        ("swap_total_bytes", {}, 2e9, 0),
        ("swap_used_bytes", {}, 1e8, 1e6),
        ("swap_used_percent", {}, 5, 0.1),
        ("swap_in_bytes_per_second", {}, 0, 10),
        ("swap_out_bytes_per_second", {}, 0, 10),
        ("processes_total", {}, 180, 5),
        ("processes_zombie", {}, 0, 0),
        ("uptime_seconds", {}, 1e6, 0),
        ("systemd_failed_units", {}, 0, 0),
        ("reboot_required", {}, 0, 0),
        ("host_up", {}, 1, 0),
    ]
    series += [("cpu_core_usage_percent", {"cpu": str(c)}, 20, 15) for c in range(4)]
    for mount in ("/", "/var"):
        series += [
            ("filesystem_size_bytes", {"mount": mount}, 1e11, 0),
            ("filesystem_avail_bytes", {"mount": mount}, 4e10, 1e7),
            ("filesystem_used_percent", {"mount": mount}, 60 + rng.random() * 20, 0.01),
            ("filesystem_inodes_used_percent", {"mount": mount}, 10, 0.001),
        ]
    for device in ("sda", "sdb"):
        series += [
            ("disk_read_bytes_per_second", {"device": device}, 1e5, 5e4),
            ("disk_write_bytes_per_second", {"device": device}, 3e5, 1e5),
        ]
    for interface in ("eth0", "lo"):
        series += [
            ("network_receive_bytes_per_second", {"interface": interface}, 2e5, 1e5),
            ("network_transmit_bytes_per_second", {"interface": interface}, 1e5, 5e4),
            ("network_errors_per_second", {"interface": interface}, 0, 0.01),
        ]
    return series


def snapshots_of(
    host: str, start: datetime, count: int, interval: float, seed: int
) -> Iterator[Snapshot]:
    """Yield ``count`` snapshots of ``host`` from ``start`` (random walks, reproducible)."""
    rng = random.Random(seed)
    series = host_series(rng)
    values = [v for _, _, v, _ in series]
    for i in range(count):
        samples = []
        for k, (metric, labels, _, spread) in enumerate(series):
            values[k] = max(0.0, values[k] + rng.gauss(0, spread) * 0.1)
            samples.append(Sample.of(metric, values[k], **labels))
        yield Snapshot(host, start + timedelta(seconds=i * interval), samples)


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def timed(fn: Callable[[], Awaitable[Any]], iterations: int) -> dict[str, float]:
    """Run ``fn`` WARMUP + iterations times; return median and p95 of the measured ones, ms."""
    for _ in range(WARMUP):
        await fn()
    took = []
    for _ in range(iterations):
        began = time.perf_counter()
        await fn()
        took.append((time.perf_counter() - began) * 1000)
    return {
        "median_ms": statistics.median(took),
        "p95_ms": percentile(took, 0.95),
        "min_ms": min(took),
    }


async def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build, fill, roll up and query one backend; return its figures."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tend-bench-series-{backend}-"))
    fields: dict[str, Any] = {
        "data_dir": tmp / "data",
        "log_level": "WARNING",
        "access_log": False,
        "monitor": False,
        "scheduler": False,
        "password_hash_memory_kib": 1024,
        "password_hash_time_cost": 1,
    }
    schema = None
    admin = None
    if backend == "postgresql":
        schema = f"bench_{secrets.token_hex(6)}"
        admin = create_async_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
        fields.update(database_url=args.pg_url, database_schema=schema)
        database_desc = f"PostgreSQL {version}"
    else:
        database_desc = "SQLite (WAL) file"
    try:
        settings = Settings(_env_file=None, **fields)  # type: ignore[call-arg]
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            return await measure(app, settings, backend, database_desc, args)
    finally:
        if admin is not None:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


async def measure(
    app: Any, settings: Settings, backend: str, database_desc: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Fill the database of a started app, roll up, time the queries."""
    context = app.state.context
    database, store = context.database, context.monitoring.store
    hosts = [f"h{n:02d}" for n in range(1, args.hosts + 1)]
    async with database.session() as session:
        session.add_all(
            Host(name=h, address=f"10.9.0.{i}", transport="ssh") for i, h in enumerate(hosts, 1)
        )
        user = (
            (await session.execute(select(User).where(User.role == Role.ADMIN.value)))
            .scalars()
            .first()
        )
        assert user is not None
        _, token = await create_token(
            session, user, name="bench", expires_in_days=None, role=None, ceiling=Role.ADMIN
        )

    now = datetime.now(UTC)
    count = int(args.hours * 3600 / args.interval)
    start = now - timedelta(seconds=count * args.interval)
    log(f"[{backend}] writing {args.hours} h x {len(hosts)} hosts every {args.interval:g} s")
    generators = [snapshots_of(h, start, count, args.interval, seed=i) for i, h in enumerate(hosts)]
    began = time.perf_counter()
    rows = 0
    for _ in range(0, count, ROUNDS_PER_WRITE):
        batch = [
            s for gen in generators for _, s in zip(range(ROUNDS_PER_WRITE), gen, strict=False)
        ]
        rows += await store.write_round(batch, [])
    write_s = time.perf_counter() - began
    log(f"[{backend}] {rows:,} samples in {write_s:.1f} s ({rows / write_s:,.0f}/s); rolling up")

    began = time.perf_counter()
    passes = 0
    while True:
        passes += 1
        done = await roll_up(database, now=now)
        if done["rows_1m"] == 0 and done["rows_1h"] == 0:
            break
    rollup_s = time.perf_counter() - began
    async with database.session() as session:
        sizes = {
            table.__tablename__: await session.scalar(select(func.count()).select_from(table))
            for table in (MetricSample, MetricRollupMinute, MetricRollupHour)
        }
    log(f"[{backend}] rolled up in {rollup_s:.1f} s ({passes} passes): {sizes}")

    frm, to = now - timedelta(hours=24), now
    expected = round(min(24.0, args.hours) * 60)  # one point per minute that has data
    params = {"from": frm.isoformat(), "to": to.isoformat(), "step": 60}
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def http(metric: str, expect_series: int) -> None:
            response = await client.get(
                "/api/v1/hosts/h01/series", params={**params, "metric": metric}, headers=headers
            )
            response.raise_for_status()
            body = response.json()
            assert (body["resolution"], body["step"]) == ("1m", 60), body
            assert len(body["series"]) == expect_series, body["series"]
            lengths = [len(s["points"]) for s in body["series"]]
            assert all(abs(n - expected) <= 2 for n in lengths), (lengths, expected)

        figures["http"] = await timed(lambda: http("cpu_usage_percent", 1), args.iterations)
        figures["http 2 series"] = await timed(
            lambda: http("filesystem_used_percent", 2), args.iterations
        )
        size = len(
            (
                await client.get(
                    "/api/v1/hosts/h01/series",
                    params={**params, "metric": "cpu_usage_percent"},
                    headers=headers,
                )
            ).content
        )

    async def query(resolution: str | None) -> None:
        plan = plan_query(
            frm,
            to,
            step=60,
            now=now,
            retention=retention_of(settings),
            raw_interval=args.interval,
            max_points=settings.monitor_series_max_points,
        )
        if resolution is not None:
            plan = Plan(resolution, plan.step, plan.start, plan.end, plan.coarsened)  # type: ignore[arg-type]
        found = await query_series(database, host="h01", metric="cpu_usage_percent", plan=plan)
        assert abs(len(found[0].points) - expected) <= 2, (len(found[0].points), expected)

    figures["query"] = await timed(lambda: query(None), args.iterations)
    figures["raw only"] = await timed(lambda: query("raw"), max(10, args.iterations // 5))
    for name, f in figures.items():
        log(f"[{backend}] {name:14s} median {f['median_ms']:.2f} ms, p95 {f['p95_ms']:.2f} ms")
    return {
        "backend": backend,
        "database": database_desc,
        "samples_written": rows,
        "write_seconds": write_s,
        "rollup_seconds": rollup_s,
        "rollup_passes": passes,
        "table_rows": sizes,
        "response_bytes": size,
        "figures": figures,
    }


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=4, help="hosts with data (4)")
    parser.add_argument("--hours", type=float, default=24.0, help="hours of samples (24)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--iterations", type=int, default=100, help="timed queries (100)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TEND_BENCH_PG_URL", DEFAULT_PG_URL),
        help="SQLAlchemy URL of PostgreSQL (env TEND_BENCH_PG_URL; default %(default)s)",
    )
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON_OUT, help="JSON results")
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - set(BACKENDS) or not args.backends:
        parser.error(f"choose backends from {', '.join(BACKENDS)}")
    if args.hours < 24:
        log("note: fewer than 24 h of data; the 24 h query then covers partly empty time")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 0 when every backend met the target, 1 otherwise."""
    args = parse_args(argv)
    results = []
    for backend in args.backends:
        try:
            results.append(asyncio.run(bench_backend(backend, args)))
        except (OSError, AssertionError, httpx.HTTPError) as exc:
            log(f"[{backend}] FAILED: {type(exc).__name__}: {exc}")
            results.append({"backend": backend, "failed": f"{type(exc).__name__}: {exc}"})
    print(
        f"benchmark : 24 h series at step 60 s, {args.hosts} hosts x ~45 series, "
        f"{args.hours:g} h of {args.interval:g} s samples, rolled up"
    )
    print(
        f"machine   : {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"date      : {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {args.iterations} timed runs "
        f"after {WARMUP} warm-up runs; ms"
    )
    print()
    print("backend    | what           | median   | p95      | rows raw / 1m / 1h")
    print("-----------+----------------+----------+----------+-------------------------")
    met = True
    for r in results:
        if "failed" in r:
            print(f"{r['backend']:10s} | FAILED: {r['failed']}")
            met = False
            continue
        sizes = r["table_rows"]
        rows = " / ".join(
            f"{sizes[t]:,}" for t in ("metric_samples", "metric_rollups_1m", "metric_rollups_1h")
        )
        for i, (name, f) in enumerate(r["figures"].items()):
            print(
                f"{r['backend'] if i == 0 else '':10s} | {name:14s} | {f['median_ms']:6.2f}   "
                f"| {f['p95_ms']:6.2f}   | {rows if i == 0 else ''}"
            )
        met = met and r["figures"]["http"]["median_ms"] < 50
        print(
            f"{'':10s} | writes {r['samples_written'] / r['write_seconds']:,.0f} samples/s, "
            f"rollup of the day {r['rollup_seconds']:.1f} s, response {r['response_bytes']:,} B"
        )
    print(f"target: http median < 50 ms on every backend: {'met' if met else 'NOT met'}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(
        json.dumps(
            {"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2
        )
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
