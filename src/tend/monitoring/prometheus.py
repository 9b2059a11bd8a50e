"""Prometheus exposition: the fleet's latest values and tend's own metrics, in text format 0.0.4.

Fleet metrics come from the metric registry: ``tend_`` prefix, Prometheus base units in the
name (percentages become ``_ratio`` from 0 to 1), HELP from the registry's description, labels
``host`` plus the metric's own. Everything is a gauge: tend already turns counters into rates.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tend import __version__
from tend.jobs.models import JOB_STATES, Job
from tend.monitoring.alerts.models import (
    ACTIVE_STATES,
    NOTIFICATION_STATES,
    SEVERITIES,
    Alert,
    AlertNotification,
)
from tend.monitoring.registry import METRICS, MetricSpec, Snapshot

PREFIX = "tend_"
# Names Prometheus reserves for counters, histograms and summaries, and what gauges use instead.
_RENAMES = {"cpu_count": "cpus", "processes_total": "processes"}
_RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created")
_UNIT_WORDS = {
    "percent": "ratio from 0 to 1",
    "bytes": "bytes",
    "bytes_per_second": "bytes per second",
    "count": "count",
    "per_second": "per second",
    "seconds": "seconds",
    "boolean": "1 or 0",
}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def exposition_name(spec: MetricSpec) -> tuple[str, float]:
    """Return a metric's Prometheus name and the factor its values are multiplied by.

    Args:
        spec: The registry entry.

    Returns:
        ``(name, scale)``, e.g. ``("tend_filesystem_used_ratio", 0.01)``.
    """
    name = _RENAMES.get(spec.name, spec.name)
    scale = 1.0
    if spec.unit == "percent":
        name = name.removesuffix("_percent") + "_ratio"
        scale = 0.01
    for suffix in _RESERVED_SUFFIXES:
        name = name.removesuffix(suffix)
    if spec.unit == "seconds" and not name.endswith("_seconds"):
        name += "_seconds"
    if spec.unit == "bytes" and not name.endswith("_bytes"):
        name += "_bytes"
    return PREFIX + name, scale


def fleet_families(snapshots: Iterable[Snapshot]) -> list[Metric]:
    """Turn the newest snapshots into gauge families, one per registry metric present.

    Args:
        snapshots: The newest snapshot of each host.

    Returns:
        The families, by name; also ``tend_collection_timestamp_seconds`` per host.
    """
    families: dict[str, tuple[MetricSpec, float, dict[tuple[str, ...], float]]] = {}
    stamps: dict[tuple[str, ...], float] = {}
    for snapshot in snapshots:
        stamps[(snapshot.host,)] = snapshot.at.timestamp()
        for sample in snapshot.samples:
            spec = METRICS.get(sample.metric)
            if spec is None:
                continue
            name, scale = exposition_name(spec)
            _, _, series = families.setdefault(name, (spec, scale, {}))
            labels = dict(sample.labels)
            key = (snapshot.host, *(labels.get(label, "") for label in spec.labels))
            series[key] = sample.value * scale
    out: list[Metric] = []
    for name in sorted(families):
        spec, _, series = families[name]
        help_text = f"{spec.description} ({_UNIT_WORDS[spec.unit]})"
        family = GaugeMetricFamily(name, help_text, labels=["host", *spec.labels])
        for key, value in series.items():
            family.add_metric(list(key), value)
        out.append(family)
    if stamps:
        collected = GaugeMetricFamily(
            PREFIX + "collection_timestamp_seconds",
            "when the newest snapshot of the host was taken (Unix time)",
            labels=["host"],
        )
        for key, value in sorted(stamps.items()):
            collected.add_metric(list(key), value)
        out.append(collected)
    return out


def labelled_gauge(
    name: str, help_text: str, labels: Sequence[str], values: dict[tuple[str, ...], float]
) -> GaugeMetricFamily:
    """Build a gauge family from ``{label values: value}``."""
    family = GaugeMetricFamily(name, help_text, labels=list(labels))
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def build_info() -> GaugeMetricFamily:
    """``tend_build_info{version}`` = 1."""
    return labelled_gauge(
        PREFIX + "build_info", "the running tend's version", ["version"], {(__version__,): 1.0}
    )


class _Families:
    """A collector that yields families built for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        """Yield the families."""
        return iter(self._families)


class ServiceMetrics:
    """tend's own counters and histograms, in a registry of this app (never the global one)."""

    def __init__(self) -> None:
        """Create the metrics and the process collector (CPU, memory, open files)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            PREFIX + "http_requests",
            "HTTP requests answered, by method and status code",
            ["method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            PREFIX + "http_request_duration_seconds",
            "time to answer an HTTP request",
            registry=self.registry,
        )
        self.collections = Counter(
            PREFIX + "collections",
            "host collections by outcome: ok, partial (some metrics missing) or failed",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("ok", "partial", "failed"):
            self.collections.labels(outcome)
        self.evaluations = Histogram(
            PREFIX + "alert_evaluation_duration_seconds",
            "time to evaluate every alert rule once",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            registry=self.registry,
        )
        ProcessCollector(namespace=PREFIX.rstrip("_"), registry=self.registry)

    def observe_request(self, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        label = method if method in _METHODS else "OTHER"
        self.requests.labels(label, str(status)).inc()
        self.request_seconds.observe(seconds)

    async def observe_round(self, snapshots: list[Snapshot], states: Sequence[object]) -> None:
        """Count one monitoring round's collections (a listener of the monitor loop)."""
        for snapshot in snapshots:
            if snapshot.value("host_up") == 0:
                outcome = "failed"
            elif snapshot.error is not None:
                outcome = "partial"
            else:
                outcome = "ok"
            self.collections.labels(outcome).inc()

    def observe_evaluation(self, seconds: float) -> None:
        """Record one alert evaluation."""
        self.evaluations.observe(seconds)


async def service_families(session: AsyncSession) -> list[Metric]:
    """Jobs by state, active alerts by state and severity, notifications by status."""
    jobs: dict[tuple[str, ...], float] = {(state,): 0.0 for state in JOB_STATES}
    for state, count in await session.execute(select(Job.state, func.count()).group_by(Job.state)):
        jobs[(state,)] = float(count)
    alerts: dict[tuple[str, ...], float] = {(s, v): 0.0 for s in ACTIVE_STATES for v in SEVERITIES}
    query = (
        select(Alert.state, Alert.severity, func.count())
        .where(Alert.state.in_(ACTIVE_STATES))
        .group_by(Alert.state, Alert.severity)
    )
    for state, severity, count in await session.execute(query):
        alerts[(state, severity)] = float(count)
    notifications: dict[tuple[str, ...], float] = {(s,): 0.0 for s in NOTIFICATION_STATES}
    by_status = select(AlertNotification.status, func.count()).group_by(AlertNotification.status)
    for status, count in await session.execute(by_status):
        notifications[(status,)] = float(count)
    return [
        labelled_gauge(PREFIX + "jobs", "background jobs by state", ["state"], jobs),
        labelled_gauge(
            PREFIX + "alerts", "active alerts by state and severity", ["state", "severity"], alerts
        ),
        labelled_gauge(
            PREFIX + "alert_notifications",
            "alert notifications by delivery status",
            ["status"],
            notifications,
        ),
    ]


def render(families: Iterable[Metric], service: ServiceMetrics | None) -> bytes:
    """Render families (and the service's own metrics) in the text format 0.0.4."""
    text = generate_latest(_Families(families))
    if service is not None:
        text += generate_latest(service.registry)
    return text


class RequestMetricsMiddleware:
    """Counts every HTTP answer by method and status into the app's ``ServiceMetrics``.

    The metrics live on the app context (``context.service_metrics``), which exists once the
    lifespan has started; requests before that are not counted.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap an ASGI app."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            context = getattr(getattr(scope.get("app"), "state", None), "context", None)
            metrics = getattr(context, "service_metrics", None)
            if isinstance(metrics, ServiceMetrics):
                elapsed = time.perf_counter() - started
                metrics.observe_request(scope["method"], status, elapsed)
