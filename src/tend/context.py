"""The resources one running server shares between requests, and their FastAPI dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tend.assistant.resume import install as install_assistant
from tend.auth.cache import ApiTokenCache
from tend.auth.security import AccessTokens, Passwords
from tend.auth.throttle import LoginThrottle
from tend.db import Database
from tend.execution.build import build_execution
from tend.execution.service import ExecutionService
from tend.jobs.bus import EventBus
from tend.jobs.redis_bus import RedisEventBus
from tend.jobs.service import JobService
from tend.monitoring.alerts.service import AlertService
from tend.monitoring.prometheus import ServiceMetrics
from tend.monitoring.service import MonitoringService
from tend.settings import Settings


@dataclass(slots=True)
class AppContext:
    """Everything built in the lifespan and handed to requests by dependency injection."""

    settings: Settings
    database: Database
    passwords: Passwords
    access_tokens: AccessTokens
    login_throttle: LoginThrottle
    token_cache: ApiTokenCache
    execution: ExecutionService
    jobs: JobService
    alerts: AlertService
    service_metrics: ServiceMetrics
    monitoring: MonitoringService

    @classmethod
    def build(cls, settings: Settings, database: Database) -> AppContext:
        """Build the shared resources from settings.

        Args:
            settings: Server settings.
            database: The connected database.

        Returns:
            The context.
        """
        key = settings.signing_key()
        execution = build_execution(settings, database, key)
        context = cls(
            settings=settings,
            database=database,
            passwords=Passwords(
                time_cost=settings.password_hash_time_cost,
                memory_cost=settings.password_hash_memory_kib,
            ),
            access_tokens=AccessTokens(key, settings.access_token_ttl),
            token_cache=ApiTokenCache(settings.auth_cache_seconds),
            login_throttle=LoginThrottle(
                per_user=settings.login_max_failures_per_user,
                per_client=settings.login_max_failures_per_client,
                window=settings.login_window,
            ),
            execution=execution,
            jobs=JobService(
                database,
                RedisEventBus(settings.redis_url.get_secret_value())
                if settings.redis_url
                else EventBus(),
            ),
            alerts=AlertService(database, settings),
            service_metrics=ServiceMetrics(),
            monitoring=MonitoringService(settings, database, execution),
        )
        context.monitoring.listeners.append(context.service_metrics.observe_round)
        install_assistant(context)  # decided approvals resume the conversations waiting
        return context


async def close_context(context: AppContext) -> None:
    """Release pooled SSH connections and the database pool."""
    await context.monitoring.close()
    await context.execution.transports.close()
    await context.database.dispose()


def get_context(request: Request) -> AppContext:
    """Return the running app's context.

    Args:
        request: The current request.

    Returns:
        The context built in the lifespan.
    """
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_settings(context: ContextDep) -> Settings:
    """Return the server settings."""
    return context.settings


async def get_session(context: ContextDep) -> AsyncIterator[AsyncSession]:
    """Open the request's unit of work: commit on success, roll back on error.

    Yields:
        The session.
    """
    async with context.database.session() as session:
        yield session


def get_passwords(context: ContextDep) -> Passwords:
    """Return the password hasher."""
    return context.passwords


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit before the response is sent, so a failed commit is never reported as
# success (the default "request" scope would commit after the client already has its 200).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
