"""The FastAPI application factory and its lifespan; nothing is built at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from tend import __version__
from tend.assistant.router import router as assistant_router
from tend.auth.router import router as auth_router
from tend.bootstrap import announce_admin_password, prepare_database
from tend.context import AppContext, close_context
from tend.db import Database
from tend.diagnostics.router import router as diagnostics_router
from tend.errors import ErrorBody, install_error_handlers
from tend.execution.router import router as execution_router
from tend.health import router as health_router
from tend.hosts.router import router as hosts_router
from tend.jobs.router import router as jobs_router
from tend.jobs.runtime import run_jobs
from tend.log import configure_logging
from tend.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from tend.monitoring.alerts.router import router as alerts_router
from tend.monitoring.prometheus import RequestMetricsMiddleware
from tend.monitoring.prometheus_router import router as metrics_router
from tend.monitoring.router import router as monitoring_router
from tend.settings import Settings

API_PREFIX = "/api/v1"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the engine and shared services, prepare the database, dispose of them at shutdown.

    Args:
        app: The application (settings are on ``app.state.settings``).

    Yields:
        Control while the server runs.
    """
    settings: Settings = app.state.settings
    configure_logging(settings.log_level, settings.log_format)
    database = Database.from_settings(settings)
    context: AppContext | None = None
    try:
        context = AppContext.build(settings, database)
        password = await prepare_database(context)
        if password is not None:
            announce_admin_password(password)
        app.state.context = context
        async with run_jobs(context):
            yield
    finally:
        if context is not None:
            await close_context(context)
        else:
            await database.dispose()


def api_router() -> APIRouter:
    """Assemble every domain's router under ``/api/v1``."""
    router = APIRouter(
        prefix=API_PREFIX,
        responses={
            401: {"model": ErrorBody, "description": "not authenticated"},
            403: {"model": ErrorBody, "description": "role too low"},
            422: {"model": ErrorBody, "description": "invalid input"},
        },
    )
    router.include_router(auth_router)
    router.include_router(hosts_router)
    router.include_router(execution_router)
    router.include_router(jobs_router)
    router.include_router(diagnostics_router)
    router.include_router(alerts_router)
    router.include_router(monitoring_router)
    router.include_router(assistant_router)
    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    """Create the tend application.

    Args:
        settings: Settings to use; read from the environment when omitted.

    Returns:
        The application; its lifespan connects to the database.
    """
    settings = settings or Settings()
    app = FastAPI(
        title="tend",
        version=__version__,
        summary="AI-assisted management for fleets of ordinary Linux servers.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(api_router())
    app.include_router(metrics_router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware, access_log=settings.access_log)
    app.add_middleware(RequestMetricsMiddleware)
    return app
