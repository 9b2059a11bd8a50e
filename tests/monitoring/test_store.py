"""Monitoring storage on SQLite and PostgreSQL: batch writes, series at each resolution,
rollups checked against averages worked out by hand, retention, host status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select

from tend.db import Database
from tend.migrate import upgrade_database
from tend.monitoring.models import MetricRollupHour, MetricRollupMinute, MetricSample
from tend.monitoring.registry import Sample, Snapshot
from tend.monitoring.rollups import apply_retention, roll_up
from tend.monitoring.series import Plan, Retention, plan_query, query_series
from tend.monitoring.store import HostState, MetricStore, decode_labels, encode_labels
from tend.settings import Settings

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a whole hour
RETENTION = Retention(raw=86400, minute=7 * 86400, hour=90 * 86400)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database.from_settings(settings)
    await upgrade_database(db)
    yield db
    await db.dispose()


def snap(host: str, at: datetime, cpu: float, **mounts: float) -> Snapshot:
    samples = [Sample.of("cpu_usage_percent", cpu)]
    samples += [
        Sample.of("filesystem_used_percent", value, mount="/" + name.replace("root", ""))
        for name, value in mounts.items()
    ]
    return Snapshot(host=host, at=at, samples=samples)


def plan(resolution: str, step: int, start: datetime, end: datetime) -> Plan:
    return Plan(resolution, step, start, end, coarsened=False)  # type: ignore[arg-type]


async def points(database: Database, p: Plan, metric: str = "cpu_usage_percent", **kw: Any):
    found = await query_series(database, host="web-1", metric=metric, plan=p, **kw)
    return {tuple(sorted(s.labels)): s.points for s in found}


def test_labels_have_one_text_that_decodes_back() -> None:
    odd = (("mount", "/mnt/a,b=c%d"),)
    assert encode_labels((("mount", "/"),)) == "mount=/"
    assert encode_labels(()) == ""
    assert decode_labels(encode_labels(odd)) == odd
    assert decode_labels(encode_labels((("a", "1"), ("b", "x=y")))) == (("a", "1"), ("b", "x=y"))


async def test_a_round_is_one_insert_statement(database: Database) -> None:
    store = MetricStore(database)
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO METRIC_SAMPLES"):
            inserts.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    snapshots = [snap(f"h{i}", T0, i, root=50.0, data=60.0) for i in range(40)]
    states = [HostState(f"h{i}", "up", T0, T0, T0, None, 0) for i in range(40)]
    written = await store.write_round(snapshots, states)
    event.remove(database.engine.sync_engine, "before_cursor_execute", count)

    assert written == 120
    assert len(inserts) == 1
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(MetricSample)) == 120
    stored = await store.states()
    assert sorted(stored) == sorted(f"h{i}" for i in range(40))
    assert stored["h7"].state == "up"
    assert stored["h7"].since == T0
    # A retried round changes nothing and does not fail.
    assert await store.write_round(snapshots, []) == 120
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(MetricSample)) == 120


async def test_host_status_is_upserted_and_forgotten(database: Database) -> None:
    store = MetricStore(database)
    later = T0 + timedelta(minutes=5)
    await store.write_round([], [HostState("a", "up", T0, T0, T0, None, 0)])
    await store.write_round([], [HostState("a", "unreachable", later, later, T0, "refused", 3)])
    state = await store.state("a")
    assert state == HostState("a", "unreachable", later, later, T0, "refused", 3)
    await store.forget(["a"])
    assert await store.state("a") is None


async def test_rollups_match_hand_computed_values(database: Database) -> None:
    store = MetricStore(database)
    # Minute 12:00: values 1..6 -> avg 3.5, max 6, min 1 (6 samples).
    # Minute 12:01: values 8 and 12 -> avg 10, max 12, min 8 (2 samples).
    # Hour 12:00: (1+2+3+4+5+6+8+12) / 8 = 41 / 8 = 5.125 (weighted by count, not 6.75).
    values = [(0, 1), (10, 2), (20, 3), (30, 4), (40, 5), (50, 6), (60, 8), (70, 12)]
    await store.write_round([snap("web-1", T0 + timedelta(seconds=s), v) for s, v in values], [])
    # An hour later (so the 12:00 hour is complete), and a sample in 13:00.
    await store.write_round([snap("web-1", T0 + timedelta(minutes=60), 100)], [])

    result = await roll_up(database, now=T0 + timedelta(minutes=70))

    async with database.session() as session:
        minutes = (await session.execute(select(MetricRollupMinute))).scalars().all()
        hours = (await session.execute(select(MetricRollupHour))).scalars().all()
    by_minute = {
        m.ts: (m.value_avg, m.value_max, m.value_min, m.sample_count)
        for m in minutes
        if m.metric == "cpu_usage_percent"
    }
    assert by_minute == {
        T0: (3.5, 6, 1, 6),
        T0 + timedelta(minutes=1): (10, 12, 8, 2),
        T0 + timedelta(minutes=60): (100, 100, 100, 1),
    }
    assert [(h.ts, h.value_avg, h.value_max, h.value_min, h.sample_count) for h in hours] == [
        (T0, 5.125, 12, 1, 8)
    ]
    assert result["rows_1m"] == 3
    assert result["rows_1h"] == 1
    assert result["done_1h"] == (T0 + timedelta(hours=1)).isoformat()


async def test_rollup_is_idempotent_and_incremental(database: Database) -> None:
    store = MetricStore(database)
    for minute in range(5):
        at = T0 + timedelta(minutes=minute)
        await store.write_round([snap("web-1", at, minute, root=10.0 + minute)], [])
    first = await roll_up(database, now=T0 + timedelta(minutes=10))
    assert first["rows_1m"] == 10  # 5 minutes x 2 series

    async def table() -> list[tuple[Any, ...]]:
        async with database.session() as session:
            rows = await session.execute(
                select(
                    MetricRollupMinute.metric, MetricRollupMinute.ts, MetricRollupMinute.value_avg
                ).order_by(MetricRollupMinute.metric, MetricRollupMinute.ts)
            )
            return [tuple(r) for r in rows]

    before = await table()
    again = await roll_up(database, now=T0 + timedelta(minutes=10))
    assert again["rows_1m"] == 0
    assert await table() == before

    # One new minute: only it is rolled up, the earlier minutes are not touched again.
    await store.write_round([snap("web-1", T0 + timedelta(minutes=9), 42.0, root=99.0)], [])
    later = await roll_up(database, now=T0 + timedelta(minutes=13))
    assert later["rows_1m"] == 2
    after = await table()
    assert set(before) <= set(after)
    assert ("cpu_usage_percent", T0 + timedelta(minutes=9), 42.0) in after
    assert len(after) == len(before) + 2


async def test_series_at_each_resolution(database: Database) -> None:
    store = MetricStore(database)
    # Two hours of 10 s samples: cpu = minute index (so each minute averages to its index),
    # "/" = 50 + (second of the minute) / 10, "/data" = 70.
    snapshots = []
    for i in range(720):
        at = T0 + timedelta(seconds=10 * i)
        snapshots.append(snap("web-1", at, i // 6, root=50 + (i % 6), data=70.0))
        snapshots.append(snap("db-1", at, 1000.0))
    await store.write_round(snapshots, [])
    end = T0 + timedelta(hours=2)
    await roll_up(database, now=end + timedelta(minutes=5))

    raw = await points(database, plan("raw", 10, T0, T0 + timedelta(minutes=1)))
    assert raw[()] == [(int(T0.timestamp()) + 10 * k, 0.0, 0.0, 0.0) for k in range(6)]

    minute = await points(database, plan("1m", 60, T0, end))
    assert len(minute[()]) == 120
    assert minute[()][7] == (int(T0.timestamp()) + 7 * 60, 7.0, 7.0, 7.0)

    five = await points(database, plan("1m", 300, T0, end))
    # Minutes 5..9 average (5+6+7+8+9)/5 = 7; max 9, min 5.
    assert five[()][1] == (int(T0.timestamp()) + 300, 7.0, 9.0, 5.0)

    hourly = await points(database, plan("1h", 3600, T0, end))
    # Minute indexes 0..59 average 29.5; 60..119 average 89.5.
    assert hourly[()] == [
        (int(T0.timestamp()), 29.5, 59.0, 0.0),
        (int(T0.timestamp()) + 3600, 89.5, 119.0, 60.0),
    ]

    mounts = await points(database, plan("1h", 3600, T0, end), "filesystem_used_percent")
    assert mounts[(("mount", "/"),)][0][1:] == (52.5, 55.0, 50.0)
    assert mounts[(("mount", "/data"),)][0][1:] == (70.0, 70.0, 70.0)
    only_root = await points(
        database,
        plan("1m", 60, T0, end),
        "filesystem_used_percent",
        labels=[("mount", "/")],
        exact_labels=True,
    )
    assert list(only_root) == [(("mount", "/"),)]


async def test_series_reads_the_tail_the_rollups_have_not_reached(database: Database) -> None:
    store = MetricStore(database)
    snapshots = [snap("web-1", T0 + timedelta(seconds=10 * i), i // 6) for i in range(60)]
    await store.write_round(snapshots, [])
    # Rolled up to 12:05 only (now 12:07 with 2 minutes settle).
    marks = await roll_up(database, now=T0 + timedelta(minutes=7))
    assert marks["done_1m"] == (T0 + timedelta(minutes=5)).isoformat()
    # Samples 12:05-12:10 come from the raw table; the 12:00-12:10 bucket of 600 s merges both.
    found = await points(database, plan("1m", 600, T0, T0 + timedelta(minutes=10)))
    assert found[()] == [(int(T0.timestamp()), 4.5, 9.0, 0.0)]
    per_minute = await points(database, plan("1m", 60, T0, T0 + timedelta(minutes=10)))
    assert [p[1] for p in per_minute[()]] == [float(m) for m in range(10)]


async def test_retention_deletes_old_rows_only(database: Database) -> None:
    now = T0
    rows = {
        MetricSample: [now - timedelta(hours=25), now - timedelta(hours=23)],
        MetricRollupMinute: [now - timedelta(days=8), now - timedelta(days=6)],
        MetricRollupHour: [now - timedelta(days=91), now - timedelta(days=89)],
    }
    async with database.session() as session:
        for table, stamps in rows.items():
            for ts in stamps:
                values: dict[str, Any] = {"host": "a", "metric": "load1", "labels": "", "ts": ts}
                if table is MetricSample:
                    values["value"] = 1.0
                else:
                    values.update(value_avg=1.0, value_max=1.0, value_min=1.0, sample_count=1)
                await session.execute(insert(table).values(**values))

    deleted = await apply_retention(database, now=now, retention=RETENTION)

    assert deleted == {"metric_samples": 1, "metric_rollups_1m": 1, "metric_rollups_1h": 1}
    async with database.session() as session:
        for table, stamps in rows.items():
            kept = (await session.execute(select(table.ts))).scalars().all()
            assert kept == [stamps[1]]


@pytest.mark.parametrize(
    ("span", "step", "expected"),
    [
        (timedelta(hours=1), None, ("raw", 10, False)),
        (timedelta(hours=1), 1, ("raw", 5, True)),  # 3600 / 1000 points -> 4 s -> nice 5 s
        (timedelta(hours=24), 60, ("1m", 120, True)),  # 86400 / 1000 -> 87 s -> 120 s
        (timedelta(hours=24), 300, ("1m", 300, False)),
        (timedelta(hours=24), None, ("1m", 120, False)),
        (timedelta(days=3), 30, ("1m", 300, True)),
        (timedelta(days=80), 10, ("1h", 7200, True)),
        (timedelta(days=400), None, ("1h", 43200, False)),  # 34560 s -> nice 12 h
    ],
)
def test_the_plan_caps_points_and_picks_the_table(
    span: timedelta, step: int | None, expected: tuple[str, int, bool]
) -> None:
    now = T0
    chosen = plan_query(
        now - span, now, step=step, now=now, retention=RETENTION, raw_interval=10, max_points=1000
    )
    assert (chosen.resolution, chosen.step, chosen.coarsened) == expected
    buckets = (chosen.end - chosen.start).total_seconds() / chosen.step
    assert buckets <= 1001
    assert chosen.start <= now - span
    assert chosen.end >= now


def test_old_ranges_use_a_table_that_still_holds_them() -> None:
    now = T0
    # Two days ago at a 10 s step: raw samples are gone, so 1-minute rollups serve it.
    chosen = plan_query(
        now - timedelta(days=2),
        now - timedelta(days=2) + timedelta(minutes=10),
        step=10,
        now=now,
        retention=RETENTION,
        raw_interval=10,
        max_points=1000,
    )
    assert (chosen.resolution, chosen.step, chosen.coarsened) == ("1m", 60, True)


async def test_concurrent_rollups_wait_for_each_other(database: Database) -> None:
    store = MetricStore(database)
    await store.write_round(
        [snap("web-1", T0 + timedelta(seconds=10 * i), i, root=1.0) for i in range(60)], []
    )
    now = T0 + timedelta(minutes=15)
    results = await asyncio.gather(*(roll_up(database, now=now) for _ in range(3)))
    assert sorted(r["rows_1m"] for r in results) == [0, 0, 20]  # 10 minutes x 2 series, once
    assert {r["done_1m"] for r in results} == {(T0 + timedelta(minutes=13)).isoformat()}
