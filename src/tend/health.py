"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from tend import __version__
from tend.context import ContextDep
from tend.errors import ServiceUnavailable

logger = logging.getLogger("tend.health")

router = APIRouter(tags=["health"])

_READY_TIMEOUT = 3.0


class HealthStatus(BaseModel):
    """A probe's answer."""

    status: str
    version: str


@router.get("/health", response_model=HealthStatus)
async def health() -> HealthStatus:
    """Liveness: the process is up and serving."""
    return HealthStatus(status="ok", version=__version__)


@router.get("/ready", response_model=HealthStatus)
async def ready(context: ContextDep) -> HealthStatus:
    """Readiness: the database answers within a few seconds."""
    try:
        async with asyncio.timeout(_READY_TIMEOUT):
            await context.database.ping()
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        logger.warning("database not reachable", extra={"error": type(exc).__name__})
        raise ServiceUnavailable(f"database not reachable ({type(exc).__name__})") from exc
    return HealthStatus(status="ready", version=__version__)
