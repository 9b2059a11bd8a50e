"""The data layer on both backends: migrations from empty, schema matches models, units of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text

import tend.models
from tend.db import Database
from tend.hosts.models import Host
from tend.migrate import current_revision, head_revision, upgrade_database
from tend.settings import Settings


@pytest.fixture
async def database(settings: Settings):
    db = Database.from_settings(settings)
    yield db
    await db.dispose()


async def test_migrations_create_the_schema_from_empty(database: Database) -> None:
    assert await current_revision(database) is None
    revision = await upgrade_database(database)
    assert revision == head_revision()
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"users", "api_tokens", "hosts", "host_tags", "alembic_version"} <= tables
    # Upgrading again is a no-op.
    assert await upgrade_database(database) == revision


async def test_migrations_match_the_models(database: Database) -> None:
    await upgrade_database(database)

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, tend.models.Base.metadata))

    async with database.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], "models changed without a migration: alembic revision --autogenerate"


async def test_session_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    await upgrade_database(database)
    async with database.session() as session:
        session.add(Host(name="kept", address="10.0.0.1", transport="ssh"))
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            session.add(Host(name="dropped", address="10.0.0.2", transport="ssh"))
            await session.flush()
            raise RuntimeError("handler failed")
    async with database.session() as session:
        names = (await session.execute(select(Host.name).order_by(Host.name))).scalars().all()
    assert names == ["kept", "local"]


async def test_constraints_are_enforced(database: Database) -> None:
    await upgrade_database(database)
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with database.session() as session:
            session.add(Host(name="bad", address="x", port=70000, transport="ssh"))
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            await session.execute(text("INSERT INTO host_tags (host_id, tag) VALUES (424242, 'x')"))


async def test_timestamps_are_aware_utc(database: Database) -> None:
    await upgrade_database(database)
    plus_two = timezone(timedelta(hours=2))
    async with database.session() as session:
        session.add(
            Host(
                name="t",
                address="10.0.0.1",
                transport="ssh",
                created_at=datetime(2026, 1, 1, 12, tzinfo=plus_two),
            )
        )
    async with database.session() as session:
        host = (await session.execute(select(Host).where(Host.name == "t"))).scalar_one()
    assert host.created_at == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert host.created_at.tzinfo is not None
    with pytest.raises(Exception, match="naive datetime"):
        async with database.session() as session:
            session.add(
                Host(name="n", address="10.0.0.1", transport="ssh", created_at=datetime(2026, 1, 1))
            )


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    assert settings.effective_database_url.endswith(f"{tmp_path}/data/tend.db")
    db = Database.from_settings(settings)
    try:
        async with db.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
        assert mode == "wal"
        assert fks == 1
        assert (tmp_path / "data" / "tend.db").exists()
    finally:
        await db.dispose()


async def test_pool_follows_settings(settings: Settings, backend: str) -> None:
    tuned = settings.model_copy(update={"db_pool_size": 3, "db_max_overflow": 2})
    db = Database.from_settings(tuned)
    try:
        await db.ping()
        pool = db.engine.pool
        if backend == "postgresql":
            assert pool.size() == 3  # type: ignore[attr-defined]
            assert pool._max_overflow == 2  # type: ignore[attr-defined]
            assert pool._pre_ping is True
        else:
            # SQLite pools per file with its own defaults; the PostgreSQL knobs do not apply.
            assert db.engine.dialect.name == "sqlite"
            assert pool.size() != 3  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def test_upgrades_keep_existing_rows(database: Database) -> None:
    """Data written at an older revision survives later migrations (tags included)."""
    await upgrade_database(database, "0002")
    async with database.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO hosts (name, address, port, transport, created_at, updated_at) "
                "VALUES ('old', '10.0.0.3', 22, 'ssh', :now, :now)"
            ),
            {"now": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        await conn.execute(
            text(
                "INSERT INTO host_tags (host_id, tag) "
                "SELECT id, 'legacy' FROM hosts WHERE name = 'old'"
            )
        )
    await upgrade_database(database)
    async with database.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT h.name, t.tag FROM hosts h JOIN host_tags t ON t.host_id = h.id "
                "ORDER BY h.name"
            )
        )
        tags = {str(row[0]): str(row[1]) for row in rows}
    assert tags == {"local": "local", "old": "legacy"}
    if database.engine.dialect.name == "sqlite":
        async with database.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
