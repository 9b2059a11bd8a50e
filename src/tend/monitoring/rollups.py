"""Rollups (raw → 1 minute → 1 hour) and retention, run as periodic jobs.

Each resolution remembers how far it is complete (``metric_rollup_progress``); a run rolls up
only the whole buckets after that mark and before ``now - settle``, in one transaction that also
moves the mark. Running it twice changes nothing; a run never rescans older history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from tend.db import Database, utcnow
from tend.jobs.kinds import JobContext, job_kind
from tend.monitoring.models import (
    MetricRollupHour,
    MetricRollupMinute,
    MetricSample,
    RollupProgress,
)
from tend.monitoring.series import Retention
from tend.monitoring.timesql import TruncUnit, truncate_ts

SETTLE_SECONDS = 120.0  # samples of a round are written shortly after they are collected
MAX_MINUTE_SPAN = timedelta(hours=6)  # a catch-up after downtime proceeds in slices
MAX_HOUR_SPAN = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class _Level:
    resolution: str
    unit: TruncUnit
    width: int
    max_span: timedelta


_MINUTE = _Level("1m", "minute", 60, MAX_MINUTE_SPAN)
_HOUR = _Level("1h", "hour", 3600, MAX_HOUR_SPAN)


def _floor(moment: datetime, width: int) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / width) * width, UTC)


def _aggregate_raw(start: datetime, stop: datetime) -> Any:
    bucket = truncate_ts(MetricSample.ts, "minute")
    return (
        select(
            MetricSample.host,
            MetricSample.metric,
            bucket,
            MetricSample.labels,
            func.avg(MetricSample.value),
            func.max(MetricSample.value),
            func.min(MetricSample.value),
            func.count(MetricSample.value),
        )
        .where(MetricSample.ts >= start, MetricSample.ts < stop)
        .group_by(MetricSample.host, MetricSample.metric, MetricSample.labels, bucket)
    )


def _aggregate_minutes(start: datetime, stop: datetime) -> Any:
    m = MetricRollupMinute
    bucket = truncate_ts(m.ts, "hour")
    return (
        select(
            m.host,
            m.metric,
            bucket,
            m.labels,
            func.sum(m.value_avg * m.sample_count) / func.sum(m.sample_count),
            func.max(m.value_max),
            func.min(m.value_min),
            func.sum(m.sample_count),
        )
        .where(m.ts >= start, m.ts < stop)
        .group_by(m.host, m.metric, m.labels, bucket)
    )


async def _roll(database: Database, level: _Level, limit: datetime) -> tuple[int, datetime | None]:
    """Roll up one resolution up to ``limit``; return (rows written, the new mark)."""
    source = MetricSample if level is _MINUTE else MetricRollupMinute
    target = MetricRollupMinute if level is _MINUTE else MetricRollupHour
    aggregate = _aggregate_raw if level is _MINUTE else _aggregate_minutes
    limit = _floor(limit, level.width)
    upsert = postgresql.insert if database.engine.dialect.name == "postgresql" else sqlite.insert
    async with database.session() as session:
        # The progress row is the lock. Creating it if missing is a write, so on SQLite it takes
        # the database's write lock before anything is read; on PostgreSQL the row is then
        # locked. A rollup in another process waits here, then sees this one's mark.
        await session.execute(
            upsert(RollupProgress)
            .values(resolution=level.resolution, done_until=None)
            .on_conflict_do_nothing()
        )
        mark = (
            await session.execute(
                select(RollupProgress)
                .where(RollupProgress.resolution == level.resolution)
                .with_for_update()
            )
        ).scalar_one()
        done = mark.done_until
        first_query = select(func.min(source.ts))
        if done is not None:
            first_query = first_query.where(source.ts >= done)
        first = await session.scalar(first_query)
        if first is None:
            return 0, done
        start = _floor(first, level.width)
        stop = min(limit, start + level.max_span)
        if stop <= start:
            return 0, done
        # Nothing should be there (the mark says so); clearing it keeps a re-run exact anyway.
        await session.execute(delete(target).where(target.ts >= start, target.ts < stop))
        columns = [
            "host",
            "metric",
            "ts",
            "labels",
            "value_avg",
            "value_max",
            "value_min",
            "sample_count",
        ]
        result = await session.execute(insert(target).from_select(columns, aggregate(start, stop)))
        mark.done_until = stop
        written = result.rowcount if isinstance(result.rowcount, int) else 0  # type: ignore[attr-defined]
        return max(written, 0), stop


async def roll_up(
    database: Database, *, now: datetime, settle: float = SETTLE_SECONDS
) -> dict[str, Any]:
    """Bring the 1-minute and then the 1-hour rollups up to date.

    Args:
        database: The database.
        now: The present.
        settle: Seconds a minute must be past before it is rolled up (late writes).

    Returns:
        Rows written per resolution and the new marks.
    """
    minute_rows, minute_mark = await _roll(database, _MINUTE, now - timedelta(seconds=settle))
    hour_rows, hour_mark = 0, None
    if minute_mark is not None:
        hour_rows, hour_mark = await _roll(database, _HOUR, minute_mark)
    return {
        "rows_1m": minute_rows,
        "rows_1h": hour_rows,
        "done_1m": minute_mark.isoformat() if minute_mark else None,
        "done_1h": hour_mark.isoformat() if hour_mark else None,
    }


async def apply_retention(
    database: Database, *, now: datetime, retention: Retention
) -> dict[str, int]:
    """Delete samples and rollups older than their retention.

    Args:
        database: The database.
        now: The present.
        retention: Seconds each table keeps.

    Returns:
        Rows deleted per table.
    """
    deleted: dict[str, int] = {}
    tables: tuple[tuple[Any, int], ...] = (
        (MetricSample, retention.raw),
        (MetricRollupMinute, retention.minute),
        (MetricRollupHour, retention.hour),
    )
    for table, keep in tables:
        cutoff = now - timedelta(seconds=keep)
        async with database.session() as session:
            result = await session.execute(delete(table).where(table.ts < cutoff))
            deleted[table.__tablename__] = max(int(result.rowcount), 0)  # type: ignore[attr-defined]
    return deleted


def retention_of(settings: Any) -> Retention:
    """Read the retention settings (``TEND_MONITOR_*_RETENTION``)."""
    return Retention(
        raw=settings.monitor_raw_retention,
        minute=settings.monitor_minute_retention,
        hour=settings.monitor_hour_retention,
    )


@job_kind(
    "monitoring.rollup",
    idempotent=True,
    description="roll raw samples up into 1-minute and 1-hour series",
    api=True,
)
async def rollup_job(ctx: JobContext) -> dict[str, Any]:
    """Bring the rollups up to date (one run at a time in this process)."""
    async with ctx.app.monitoring.rollup_lock:
        return await roll_up(ctx.app.database, now=utcnow())


@job_kind(
    "monitoring.retention",
    idempotent=True,
    description="delete samples and rollups past their retention",
    api=True,
)
async def retention_job(ctx: JobContext) -> dict[str, Any]:
    """Apply the retention settings."""
    deleted = await apply_retention(
        ctx.app.database, now=utcnow(), retention=retention_of(ctx.app.settings)
    )
    return {"deleted": deleted}
