"""HTTP endpoints of monitoring: latest values, series, a live view (SSE) and the catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse

from tend.auth.deps import Viewer
from tend.context import ContextDep, SessionDep
from tend.monitoring import service
from tend.monitoring.schemas import HostMetrics, MetricSpecPublic, SeriesResponse
from tend.monitoring.service import MonitoringService

router = APIRouter(tags=["monitoring"])

NamePath = Annotated[str, Path(max_length=63, description="host name")]


def get_monitoring(context: ContextDep) -> MonitoringService:
    """Return the monitoring service built in the lifespan."""
    return context.monitoring


MonitoringDep = Annotated[MonitoringService, Depends(get_monitoring)]


@router.get("/hosts/{name}/metrics", response_model=HostMetrics)
async def host_metrics(
    name: NamePath, session: SessionDep, monitoring: MonitoringDep, _: Viewer
) -> Response:
    """A host's newest value of every metric (with unit and description) and its state."""
    metrics = await service.host_metrics(monitoring, session, name)
    # Serialised once here; returning the model would make FastAPI validate it all again.
    return Response(metrics.model_dump_json(), media_type="application/json")


@router.get("/hosts/{name}/series", response_model=SeriesResponse, response_model_by_alias=True)
async def host_series(
    name: NamePath,
    session: SessionDep,
    monitoring: MonitoringDep,
    _: Viewer,
    metric: Annotated[str, Query(max_length=64, description="a metric of the catalog")],
    start: Annotated[
        datetime | None, Query(alias="from", description="range start (default: to - 1 h)")
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="range end (default: now)")
    ] = None,
    step: Annotated[
        int | None,
        Query(ge=1, le=366 * 86400, description="bucket width, s (raised to cap the points)"),
    ] = None,
    label: Annotated[
        list[str] | None,
        Query(max_length=600, description="only series with this label, KEY=VALUE (repeatable)"),
    ] = None,
) -> Response:
    """A metric of a host over a range: ``[ts, avg, max, min]`` per bucket and label set.

    The table (raw samples, 1-minute or 1-hour rollups) follows the step and the range; huge
    ranges are served at a coarser step, never loaded whole.
    """
    found = await service.series(
        monitoring,
        session,
        name,
        metric=metric,
        start=start,
        end=end,
        step=step,
        labels=label or [],
    )
    return Response(found.model_dump_json(by_alias=True), media_type="application/json")


@router.get(
    "/hosts/{name}/live",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def host_live(
    name: NamePath,
    session: SessionDep,
    monitoring: MonitoringDep,
    _: Viewer,
    seconds: Annotated[
        float | None,
        Query(gt=0, description="end the stream after this long, s (default: the cap)"),
    ] = None,
) -> StreamingResponse:
    """Follow a host live: while the stream is open the host is collected every second.

    Each new snapshot arrives as ``event: metrics`` with the same body as ``/metrics``.
    """
    await service.host_metrics(monitoring, session, name)  # 404 before the stream starts
    cap = monitoring.settings.monitor_live_max_seconds
    duration = min(seconds, cap) if seconds is not None else cap
    return StreamingResponse(
        service.live_events(monitoring, name, seconds=duration),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/metrics/catalog", response_model=list[MetricSpecPublic])
async def metric_catalog(_: Viewer) -> list[MetricSpecPublic]:
    """Every metric tend collects: name, unit, description and labels."""
    return service.catalog()
