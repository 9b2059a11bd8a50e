"""Async data layer: engine and pool, session factory, declarative base, per-request sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from tend.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC before storing; naive datetimes are refused."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given; tend stores aware UTC datetimes only"
            raise ValueError(msg)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return stored values as aware UTC datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base for every tend table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


class TimestampMixin:
    """``created_at`` / ``updated_at`` columns maintained by the ORM."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def build_engine(settings: Settings, url: str | None = None, **overrides: Any) -> AsyncEngine:
    """Create the async engine for the configured database.

    SQLite gets WAL mode, foreign keys and a busy timeout on every connection; PostgreSQL gets a
    pool sized by settings with pre-ping and recycling.

    Args:
        settings: Server settings.
        url: Database URL overriding the configured one (tests, tools).
        **overrides: Extra keyword arguments for ``create_async_engine``.

    Returns:
        The engine; dispose of it with ``await engine.dispose()``.
    """
    target = make_url(url or settings.effective_database_url)
    kwargs: dict[str, Any] = {"echo": settings.db_echo}
    if target.get_backend_name() == "sqlite":
        database = target.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        if settings.database_schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": settings.database_schema}}
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
    kwargs.update(overrides)
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


_WROTE = "tend_wrote"


class TendSession(Session):
    """The ORM session tend uses; it remembers whether its unit of work wrote anything."""


@event.listens_for(TendSession, "after_flush")
def _mark_wrote(session: Session, _context: object) -> None:
    session.info[_WROTE] = True


@event.listens_for(TendSession, "do_orm_execute")
def _mark_executed_write(state: ORMExecuteState) -> None:
    if not state.is_select:
        state.session.info[_WROTE] = True


class Database:
    """An engine with its session factory; built in the app lifespan, disposed at shutdown."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Wrap an engine.

        Args:
            engine: The async engine.
        """
        self.engine = engine
        # TendSession remembers whether a unit of work wrote anything (a flush, or an UPDATE,
        # INSERT or DELETE statement), so read-only requests skip the COMMIT round trip.
        self.sessions = async_sessionmaker(
            engine, expire_on_commit=False, autoflush=False, sync_session_class=TendSession
        )

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> Database:
        """Build a database from settings.

        Args:
            settings: Server settings.
            url: Optional URL overriding the configured one.

        Returns:
            The database.
        """
        return cls(build_engine(settings, url))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Open a unit of work: commit when the block succeeds, roll back when it raises.

        Yields:
            The session.
        """
        async with self.sessions() as session:
            try:
                yield session
                if session.info.get(_WROTE) or session.new or session.dirty or session.deleted:
                    await session.commit()
                # A unit of work that only read ends without COMMIT: closing the session returns
                # the connection, and the pool's reset-on-return rolls the read transaction back.
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        """Run a trivial query; raises when the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
