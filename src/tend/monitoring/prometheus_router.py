"""``GET /metrics``: the Prometheus scrape endpoint (a bearer token unless TEND_METRICS_PUBLIC).

It is left out of the OpenAPI document: it answers text, not JSON, and its access rule
depends on a setting. Any valid bearer credential (viewer or higher) may scrape.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from tend.auth.service import resolve_bearer
from tend.context import ContextDep, SessionDep
from tend.errors import Unauthorized
from tend.monitoring.alerts.jobs import latest_values
from tend.monitoring.prometheus import build_info, fleet_families, render, service_families

router = APIRouter(tags=["monitoring"])


async def _authorize(request: Request, context: ContextDep, session: SessionDep) -> None:
    if context.settings.metrics_public:
        return
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("/metrics needs a bearer token (or TEND_METRICS_PUBLIC=true)")
    await resolve_bearer(session, context.access_tokens, credential.strip(), context.token_cache)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, context: ContextDep, session: SessionDep) -> Response:
    """Expose the fleet's latest values and tend's own metrics to Prometheus."""
    await _authorize(request, context, session)
    snapshots = await latest_values(context).all()
    families = [*fleet_families(snapshots), *await service_families(session), build_info()]
    body = render(families, context.service_metrics)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
