"""Database tables of monitoring: raw samples, 1-minute and 1-hour rollups, host status.

Series are keyed by host name, metric name and a canonical label string (see ``labels``); the
primary keys lead with ``(host, metric, ts)`` so a series query is one index range scan, and a
second index on ``ts`` serves rollups and retention, which cut across hosts by time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tend.db import Base

HOST_STATES = ("up", "unreachable")


class MetricSample(Base):
    """One collected value of one series (kept ``TEND_MONITOR_RAW_RETENTION``)."""

    __tablename__ = "metric_samples"
    __table_args__ = (Index("ix_metric_samples_ts", "ts"),)

    host: Mapped[str] = mapped_column(String(63), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    labels: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class _Rollup:
    """Columns shared by both rollup resolutions; ``ts`` is the start of the bucket."""

    host: Mapped[str] = mapped_column(String(63), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    labels: Mapped[str] = mapped_column(String(512), primary_key=True)
    value_avg: Mapped[float] = mapped_column(Float)
    value_max: Mapped[float] = mapped_column(Float)
    value_min: Mapped[float] = mapped_column(Float)
    sample_count: Mapped[int] = mapped_column(Integer)


class MetricRollupMinute(_Rollup, Base):
    """Per-minute average, maximum, minimum and count of a series."""

    __tablename__ = "metric_rollups_1m"
    __table_args__ = (Index("ix_metric_rollups_1m_ts", "ts"),)


class MetricRollupHour(_Rollup, Base):
    """Per-hour average, maximum, minimum and count of a series (from the minute rollups)."""

    __tablename__ = "metric_rollups_1h"
    __table_args__ = (Index("ix_metric_rollups_1h_ts", "ts"),)


class RollupProgress(Base):
    """How far a rollup resolution is complete: buckets before ``done_until`` are final.

    The row is also the lock that keeps two rollups of one resolution from overlapping.
    """

    __tablename__ = "metric_rollup_progress"

    resolution: Mapped[str] = mapped_column(String(8), primary_key=True)
    done_until: Mapped[datetime | None]


class HostStatus(Base):
    """Whether the monitor reaches a host, since when, and its last success and error."""

    __tablename__ = "host_status"
    __table_args__ = (CheckConstraint("state IN ('up', 'unreachable')", name="state"),)

    host: Mapped[str] = mapped_column(String(63), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime]
    last_attempt: Mapped[datetime]
    last_success: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
