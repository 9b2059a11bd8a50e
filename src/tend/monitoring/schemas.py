"""Response models of the monitoring API: latest values, series and the metric catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tend.monitoring.registry import Unit

HostStateName = Literal["up", "unreachable", "unknown"]


class MetricSpecPublic(BaseModel):
    """One metric of the registry."""

    name: str
    unit: Unit
    description: str
    labels: list[str]


class MetricValue(BaseModel):
    """The newest value of one series."""

    name: str
    value: float
    unit: Unit
    description: str
    labels: dict[str, str]


class HostMetrics(BaseModel):
    """A host's newest values and whether the monitor reaches it.

    ``state`` is ``unknown`` until the first collection; ``since`` is when the state began.
    ``info`` holds what is not a number (``top_cpu``, ``top_memory``, ``failed_units``, ...).
    """

    host: str
    state: HostStateName
    since: datetime | None
    last_success: datetime | None
    last_error: str | None
    consecutive_failures: int
    collected_at: datetime | None
    error: str | None
    metrics: list[MetricValue]
    info: dict[str, Any]


class SeriesData(BaseModel):
    """One label set of a metric: ``points`` are ``[ts, avg, max, min]``.

    ``ts`` is the bucket's start in Unix seconds; buckets without samples are absent.
    """

    labels: dict[str, str]
    points: list[tuple[int, float, float, float]]


class SeriesResponse(BaseModel):
    """A metric of a host over a range, aggregated by ``step`` seconds."""

    host: str
    metric: str
    unit: Unit
    description: str
    start: datetime = Field(serialization_alias="from", description="first bucket's start")
    end: datetime = Field(serialization_alias="to", description="last bucket's end")
    step: int = Field(description="bucket width, seconds")
    resolution: Literal["raw", "1m", "1h"] = Field(description="the table that served it")
    coarsened: bool = Field(description="the step asked for was raised to cap the points")
    series: list[SeriesData]
