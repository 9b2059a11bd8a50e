"""Monitoring's use cases and the one object the app holds: latest values, store, loop, watches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tend.db import Database
from tend.errors import NotFound, ValidationFailed
from tend.execution.targets import HostSnapshot
from tend.hosts.models import Host
from tend.monitoring.latest import LatestValues, build_latest
from tend.monitoring.loop import CollectorFactory, MonitorLoop, RoundListener
from tend.monitoring.models import HostStatus
from tend.monitoring.registry import METRICS, Collector, MetricSpec, Snapshot
from tend.monitoring.rollups import retention_of
from tend.monitoring.schedule import Clock, LoopConfig, SystemClock
from tend.monitoring.schemas import (
    HostMetrics,
    MetricSpecPublic,
    MetricValue,
    SeriesData,
    SeriesResponse,
)
from tend.monitoring.series import DEFAULT_SPAN, RollupMarks, plan_query, query_series
from tend.monitoring.store import HostState, MetricStore
from tend.monitoring.watchers import LiveWatchers, build_watchers
from tend.settings import Settings

if TYPE_CHECKING:
    from tend.execution.service import ExecutionService

LOOP_TIMEOUT_MARGIN = 2.0  # the loop's hard timeout exceeds the collector's own by this much


def default_collectors(settings: Settings, execution: ExecutionService) -> CollectorFactory:
    """Return the factory the loop uses: the local host via psutil, SSH hosts via /proc probes.

    One collector of each kind serves every host (they keep per-host counters by name); each is
    built on first use, so a server without SSH hosts never prepares the remote probe.
    """
    built: dict[str, Collector] = {}

    def collector_for(target: HostSnapshot) -> Collector:
        kind = "local" if target.transport == "local" else "ssh"
        if kind not in built:
            if kind == "local":
                from tend.monitoring.collectors.local import LocalCollector  # noqa: PLC0415

                built[kind] = LocalCollector()
            else:
                from tend.monitoring.collectors.remote import RemoteCollector  # noqa: PLC0415

                built[kind] = RemoteCollector(execution, timeout=settings.monitor_timeout)
        return built[kind]

    return collector_for


class MonitoringService:
    """Everything monitoring shares in a process (``AppContext.monitoring``).

    Attributes:
        settings: Server settings.
        database: The database.
        latest: Newest snapshot per host (Redis with ``TEND_REDIS_URL``, else memory).
        store: Batch writes of samples and host status; host status reads.
        watchers: Open live views (hosts collected every ``TEND_MONITOR_LIVE_INTERVAL``).
        registry: Every metric, by name.
        collectors: Builds a host's collector (tests may replace it before :meth:`start`).
        listeners: Called with each round's snapshots and host states after it is stored.
        clock: Time source of the loop and of "now" in queries.
        loop: The running monitor loop, if this process runs one.
        rollup_lock: Keeps this process's rollup jobs from overlapping.
        marks: The rollups' progress, cached for series queries.
    """

    def __init__(self, settings: Settings, database: Database, execution: ExecutionService) -> None:
        """Build the latest-values cache, the store and the watch registry from settings."""
        self.settings = settings
        self.database = database
        self.latest: LatestValues = build_latest(settings)
        self.store = MetricStore(database)
        self.watchers: LiveWatchers = build_watchers(settings)
        self.registry: dict[str, MetricSpec] = METRICS
        self.collectors: CollectorFactory = default_collectors(settings, execution)
        self.listeners: list[RoundListener] = []
        self.clock: Clock = SystemClock()
        self.loop: MonitorLoop | None = None
        self.rollup_lock = asyncio.Lock()
        self.marks = RollupMarks()

    def loop_config(self) -> LoopConfig:
        """Return the loop's knobs from settings."""
        s = self.settings
        return LoopConfig(
            interval=s.monitor_interval,
            live_interval=s.monitor_live_interval,
            concurrency=s.monitor_concurrency,
            timeout=s.monitor_timeout + LOOP_TIMEOUT_MARGIN,
            backoff_max=s.monitor_backoff_max,
            unreachable_after=s.monitor_unreachable_after,
        )

    def start(self, owner: str) -> MonitorLoop | None:
        """Start the monitor loop here (it collects only while it holds the lease).

        Returns:
            The loop, or ``None`` when ``TEND_MONITOR=false``.
        """
        if not self.settings.monitor or self.loop is not None:
            return self.loop
        self.loop = MonitorLoop(
            database=self.database,
            store=self.store,
            latest=self.latest,
            watchers=self.watchers,
            collectors=self.collectors,
            owner=owner,
            config=self.loop_config(),
            clock=self.clock,
            listeners=self.listeners,
        )
        self.loop.start()
        return self.loop

    async def stop(self) -> None:
        """Stop the loop, if it runs."""
        if self.loop is not None:
            await self.loop.stop()
            self.loop = None

    async def close(self) -> None:
        """Stop the loop and release the cache's and watches' connections."""
        await self.stop()
        await self.latest.close()
        await self.watchers.close()

    def watch(self, host: str) -> AbstractAsyncContextManager[None]:
        """Watch ``host`` live for the duration of a ``with`` block."""
        return self.watchers.watch(host)

    async def host_states(self) -> dict[str, HostState]:
        """Return every host's status as last written by the monitor, by host name."""
        return await self.store.states()


# --- use cases -------------------------------------------------------------------------------


def catalog() -> list[MetricSpecPublic]:
    """Return the metric registry."""
    return [
        MetricSpecPublic(name=s.name, unit=s.unit, description=s.description, labels=list(s.labels))
        for s in METRICS.values()
    ]


_STATUS_COLUMNS = (
    HostStatus.host,
    HostStatus.state,
    HostStatus.since,
    HostStatus.last_attempt,
    HostStatus.last_success,
    HostStatus.last_error,
    HostStatus.consecutive_failures,
)


async def _host_and_status(session: AsyncSession, name: str) -> HostState | None:
    """Return the host's stored status (``None`` before its first collection).

    Raises:
        NotFound: For a host not in the inventory.
    """
    query = (
        select(Host.name, *_STATUS_COLUMNS)
        .outerjoin(HostStatus, HostStatus.host == Host.name)
        .where(Host.name == name)
    )
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"host {name!r} not found")
    _, host, state, since, last_attempt, last_success, last_error, failures = row
    known: str | None = host  # NULL when the outer join found no status
    if known is None:
        return None
    return HostState(
        host=known,
        state="up" if state == "up" else "unreachable",
        since=since,
        last_attempt=last_attempt,
        last_success=last_success,
        last_error=last_error,
        consecutive_failures=failures,
    )


def render(name: str, snapshot: Snapshot | None, status: HostState | None) -> HostMetrics:
    """Combine a snapshot and a stored status into the API's view of a host."""
    values = []
    if snapshot is not None:
        for sample in sorted(snapshot.samples, key=lambda s: (s.metric, s.labels)):
            spec = METRICS.get(sample.metric)
            if spec is None:
                continue
            # Trusted values from the registry and the collector: no validation pass needed.
            values.append(
                MetricValue.model_construct(
                    name=sample.metric,
                    value=sample.value,
                    unit=spec.unit,
                    description=spec.description,
                    labels=dict(sample.labels),
                )
            )
    return HostMetrics(
        host=name,
        state="unknown" if status is None else status.state,
        since=status.since if status else None,
        last_success=status.last_success if status else None,
        last_error=status.last_error if status else None,
        consecutive_failures=status.consecutive_failures if status else 0,
        collected_at=snapshot.at if snapshot else None,
        error=snapshot.error if snapshot else None,
        metrics=values,
        info=snapshot.info if snapshot else {},
    )


async def host_metrics(
    monitoring: MonitoringService, session: AsyncSession, name: str
) -> HostMetrics:
    """Return a host's newest values with its state.

    Raises:
        NotFound: For a host not in the inventory.
    """
    snapshot, status = await monitoring.latest.get_with_state(name)
    if status is None:  # not collected lately (or never): ask the database
        status = await _host_and_status(session, name)
    # (A host deleted from the inventory is answered from the cache until the monitor loop
    # notices, within one interval.)
    return render(name, snapshot, status)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _label_filter(spec: MetricSpec, labels: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or key not in spec.labels:
            valid = ", ".join(spec.labels) or "none"
            raise ValidationFailed(
                f"label filter {item!r} must be KEY=VALUE with KEY among {spec.name}'s labels"
                f" ({valid})"
            )
        pairs.append((key, value))
    return pairs


async def series(
    monitoring: MonitoringService,
    session: AsyncSession,
    name: str,
    *,
    metric: str,
    start: datetime | None,
    end: datetime | None,
    step: int | None,
    labels: Sequence[str] = (),
) -> SeriesResponse:
    """Return a metric of a host over a range, aggregated in the database.

    Raises:
        NotFound: For a host not in the inventory.
        ValidationFailed: For an unknown metric (listing the valid ones), a range that ends
            before it starts, or a label filter the metric does not carry.
    """
    spec = METRICS.get(metric)
    if spec is None:
        raise ValidationFailed(
            {"message": f"unknown metric {metric!r}", "valid_metrics": sorted(METRICS)}
        )
    now = monitoring.clock.now()
    end = _as_utc(end) if end is not None else now
    start = _as_utc(start) if start is not None else end - DEFAULT_SPAN
    if start >= end:
        raise ValidationFailed(
            f"'from' ({start.isoformat()}) must be before 'to' ({end.isoformat()})"
        )
    pairs = _label_filter(spec, labels)
    await _host_and_status(session, name)
    settings = monitoring.settings
    plan = plan_query(
        start,
        end,
        step=step,
        now=now,
        retention=retention_of(settings),
        raw_interval=settings.monitor_interval,
        max_points=settings.monitor_series_max_points,
    )
    found = await query_series(
        monitoring.database,
        host=name,
        metric=metric,
        plan=plan,
        labels=pairs,
        exact_labels=bool(pairs) and {k for k, _ in pairs} == set(spec.labels),
        marks=monitoring.marks,
    )
    return SeriesResponse(
        host=name,
        metric=metric,
        unit=spec.unit,
        description=spec.description,
        start=plan.start,
        end=plan.end,
        step=plan.step,
        resolution=plan.resolution,
        coarsened=plan.coarsened,
        # Built from the database's numbers: no validation pass over thousands of points.
        series=[SeriesData.model_construct(labels=dict(s.labels), points=s.points) for s in found],
    )


async def live_events(
    monitoring: MonitoringService, name: str, *, seconds: float
) -> AsyncIterator[bytes]:
    """Stream a host's snapshots as Server-Sent Events while watching it.

    The watch makes the loop collect the host every ``TEND_MONITOR_LIVE_INTERVAL``; each new
    snapshot is sent once as an ``event: metrics``. A comment line keeps idle streams open.

    Args:
        monitoring: The monitoring service.
        name: The host (checked to exist by the caller).
        seconds: How long the stream lasts at most.

    Yields:
        SSE frames.
    """
    period = monitoring.settings.monitor_live_interval
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    last_sent: datetime | None = None
    quiet_since = loop.time()
    async with monitoring.watch(name):
        while loop.time() < deadline:
            snapshot = await monitoring.latest.get(name)
            if snapshot is not None and snapshot.at != last_sent:
                last_sent = snapshot.at
                status = await monitoring.store.state(name)
                body: dict[str, Any] = render(name, snapshot, status).model_dump(mode="json")
                data = json.dumps(body, separators=(",", ":"))
                yield f"event: metrics\ndata: {data}\n\n".encode()
                quiet_since = loop.time()
            elif loop.time() - quiet_since > 15:
                yield b": waiting for the next collection\n\n"
                quiet_since = loop.time()
            await asyncio.sleep(min(period / 2, max(deadline - loop.time(), 0)))
