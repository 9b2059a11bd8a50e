"""Series queries: choose a table and a step for the range, aggregate by bucket in SQL.

A query never loads more than ``max_points`` buckets per series: the step grows with the range,
and the table follows the step (raw samples, 1-minute or 1-hour rollups) and what retention
still holds. Rollups lag a little behind the present; the part of the range they do not cover
yet is read from the next finer table, and buckets that straddle the seam are merged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from tend.db import Database
from tend.monitoring.models import (
    MetricRollupHour,
    MetricRollupMinute,
    MetricSample,
    RollupProgress,
)
from tend.monitoring.store import decode_labels, encode_labels
from tend.monitoring.timesql import bucket_start

Resolution = Literal["raw", "1m", "1h"]
_Aggregate = Select[str, int, float, int, float, float]

# Steps a coarsened query snaps to, so neighbouring ranges share bucket boundaries.
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
DAY = 86400
DEFAULT_SPAN = timedelta(hours=1)  # the range shown when 'from' is not given


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each table keeps data, seconds."""

    raw: int
    minute: int
    hour: int


@dataclass(frozen=True, slots=True)
class Plan:
    """Which table serves a query, at which step, over which bucket-aligned range."""

    resolution: Resolution
    step: int
    start: datetime
    end: datetime
    coarsened: bool


@dataclass(slots=True)
class _Bucket:
    total: float = 0.0
    count: int = 0
    high: float = -math.inf
    low: float = math.inf

    def add(self, total: float, count: int, high: float, low: float) -> None:
        self.total += total
        self.count += count
        self.high = max(self.high, high)
        self.low = min(self.low, low)


@dataclass(slots=True)
class SeriesData:
    """One label set's points: ``(bucket start epoch s, avg, max, min)``, in time order."""

    labels: tuple[tuple[str, str], ...]
    points: list[tuple[int, float, float, float]] = field(default_factory=list)


def _nice(step: int) -> int:
    for candidate in NICE_STEPS:
        if candidate >= step:
            return candidate
    return math.ceil(step / DAY) * DAY


def _round_up(step: int, multiple: int) -> int:
    return math.ceil(step / multiple) * multiple


def plan_query(
    start: datetime,
    end: datetime,
    *,
    step: int | None,
    now: datetime,
    retention: Retention,
    raw_interval: float,
    max_points: int,
) -> Plan:
    """Choose the table and the step for a range.

    Args:
        start: Range start (inclusive).
        end: Range end (exclusive); ``start < end``.
        step: The step asked for, seconds, or ``None`` for the finest that fits.
        now: The present (decides what retention still holds).
        retention: Retention of each table.
        raw_interval: The collection interval (the finest useful default step).
        max_points: Most buckets per series.

    Returns:
        The plan; its range is widened to whole buckets.
    """
    span = (end - start).total_seconds()
    floor_step = max(1, math.ceil(span / max_points))
    if step is None:
        chosen = _nice(max(floor_step, math.ceil(raw_interval)))
    else:
        chosen = step if step >= floor_step else _nice(floor_step)
    age = (now - start).total_seconds()
    if chosen >= 3600 or age > retention.minute:
        resolution: Resolution = "1h"
        chosen = _round_up(chosen, 3600)
    elif chosen >= 60 or age > retention.raw:
        resolution = "1m"
        chosen = _round_up(chosen, 60)
    else:
        resolution = "raw"
    first = math.floor(start.timestamp() / chosen) * chosen
    last = math.ceil(end.timestamp() / chosen) * chosen
    return Plan(
        resolution=resolution,
        step=chosen,
        start=datetime.fromtimestamp(first, UTC),
        end=datetime.fromtimestamp(max(last, first + chosen), UTC),
        coarsened=step is not None and chosen != step,
    )


def _raw_query(step: int) -> _Aggregate:
    bucket = bucket_start(MetricSample.ts, step).label("bucket")
    return select(
        MetricSample.labels,
        bucket,
        func.sum(MetricSample.value),
        func.count(MetricSample.value),
        func.max(MetricSample.value),
        func.min(MetricSample.value),
    ).group_by(MetricSample.labels, bucket)


def _rollup_query(table: type[MetricRollupMinute | MetricRollupHour], step: int) -> _Aggregate:
    bucket = bucket_start(table.ts, step).label("bucket")
    return select(
        table.labels,
        bucket,
        func.sum(table.value_avg * table.sample_count),
        func.sum(table.sample_count),
        func.max(table.value_max),
        func.min(table.value_min),
    ).group_by(table.labels, bucket)


_TABLES: dict[Resolution, Any] = {
    "raw": MetricSample,
    "1m": MetricRollupMinute,
    "1h": MetricRollupHour,
}
_FINER: dict[Resolution, Resolution | None] = {"1h": "1m", "1m": "raw", "raw": None}


class RollupMarks:
    """How far each rollup is complete, re-read at most every ``ttl`` seconds.

    Marks only move forward, so a mark read a little earlier is safe: the range between it and
    the newer mark is simply read from the finer table.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        """Start with nothing read."""
        self.ttl = ttl
        self._marks: dict[str, datetime] = {}
        self._read_at = -math.inf

    async def get(self, session: AsyncSession) -> dict[str, datetime]:
        """Return the marks by resolution (``1m``, ``1h``), reading them when stale."""
        now = time.monotonic()
        if now - self._read_at >= self.ttl:
            rows = (await session.execute(select(RollupProgress))).scalars()
            self._marks = {r.resolution: r.done_until for r in rows if r.done_until is not None}
            self._read_at = now
        return self._marks


def _segments(
    plan: Plan, marks: dict[str, datetime]
) -> list[tuple[Resolution, datetime, datetime]]:
    """Split the plan's range by table: the rollup up to its mark, then finer tables."""
    parts: list[tuple[Resolution, datetime, datetime]] = []
    resolution: Resolution | None = plan.resolution
    start, end = plan.start, plan.end
    while resolution is not None and start < end:
        finer = _FINER[resolution]
        # A rollup is final only up to its mark; the rest comes from the finer table.
        until = end if finer is None else min(end, marks.get(resolution, start))
        if until > start:
            parts.append((resolution, start, until))
        start = max(start, until)
        resolution = finer
    return parts


async def query_series(
    database: Database,
    *,
    host: str,
    metric: str,
    plan: Plan,
    labels: Sequence[tuple[str, str]] = (),
    exact_labels: bool = False,
    marks: RollupMarks | None = None,
) -> list[SeriesData]:
    """Aggregate one metric of one host by bucket, per label set, in one statement.

    Args:
        database: The database.
        host: Host name.
        metric: Metric name.
        plan: From :func:`plan_query`.
        labels: Only label sets holding these pairs.
        exact_labels: Whether ``labels`` names every label of the metric (filtered in SQL).
        marks: Cached rollup marks (read fresh when omitted).

    Returns:
        One entry per label set, sorted by labels.
    """
    buckets: dict[str, dict[int, _Bucket]] = {}
    async with database.session() as session:
        known = await (marks or RollupMarks(ttl=0)).get(session)
        parts = []
        for resolution, start, until in _segments(plan, known):
            table = _TABLES[resolution]
            query = (
                _raw_query(plan.step) if resolution == "raw" else _rollup_query(table, plan.step)
            )
            query = query.where(
                table.host == host, table.metric == metric, table.ts >= start, table.ts < until
            )
            if exact_labels:
                query = query.where(table.labels == encode_labels(tuple(sorted(labels))))
            parts.append(query)
        if parts:
            statement = parts[0] if len(parts) == 1 else union_all(*parts)
            for text, bucket, total, count, high, low in await session.execute(statement):
                series = buckets.setdefault(text, {})
                entry = series.get(bucket)
                if entry is None:
                    series[bucket] = _Bucket(float(total), int(count), float(high), float(low))
                else:  # a bucket that straddles a rollup's mark: merge both parts
                    entry.add(float(total), int(count), float(high), float(low))
    wanted = set(labels)
    result = []
    for text in sorted(buckets):
        decoded = decode_labels(text)
        if not wanted <= set(decoded):
            continue
        points = [
            (int(ts), b.total / b.count, b.high, b.low)
            for ts, b in sorted(buckets[text].items())
            if b.count
        ]
        result.append(SeriesData(decoded, points))
    return result
