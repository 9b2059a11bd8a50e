"""Alembic migrations driven from code: ``tend db upgrade`` and server start use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from tend.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Held while migrating PostgreSQL so several replicas starting at once migrate one at a time.
_PG_MIGRATION_LOCK = 0x74656E64  # "tend"


def alembic_config(connection: Connection | None = None) -> Config:
    """Build the Alembic configuration without an ini file.

    Args:
        connection: A connection for env.py to migrate through.

    Returns:
        The configuration.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """Return the newest migration revision shipped with this version of tend."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_database(database: Database, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision`` in one transaction.

    Args:
        database: The database.
        revision: Target revision.

    Returns:
        The revision the database is at afterwards.
    """
    async with database.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite batch migrations rebuild tables; with foreign keys on, dropping the old
            # table would cascade-delete dependent rows. The pragma only works outside a
            # transaction, and is restored before the connection returns to the pool.
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await conn.commit()
        try:
            async with conn.begin():
                if conn.dialect.name == "postgresql":
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                await conn.run_sync(_upgrade, revision)
                if sqlite:
                    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).first()
                    if broken is not None:
                        msg = f"migration left a dangling foreign key: {tuple(broken)}"
                        raise RuntimeError(msg)
                return await conn.run_sync(_current)
        finally:
            if sqlite:
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                await conn.commit()


async def current_revision(database: Database) -> str | None:
    """Return the revision the database is at (``None`` when never migrated)."""
    async with database.engine.connect() as conn:
        return await conn.run_sync(_current)
