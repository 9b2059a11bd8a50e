"""Shared fixtures: isolated settings, a database per test on SQLite and PostgreSQL, a running app.

PostgreSQL runs when ``TEND_TEST_DATABASE_URL`` is set (CI sets it). Each PostgreSQL test gets a
fresh schema that is dropped afterwards. Outside CI an unreachable PostgreSQL skips those tests
with the reason; in CI it fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tend.app import create_app
from tend.auth.models import ApiToken, Role, User
from tend.auth.service import create_user
from tend.auth.tokens import create_token
from tend.context import AppContext
from tend.db import utcnow
from tend.settings import Settings

PG_DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
IN_CI = bool(os.environ.get("CI"))


def postgres_url() -> str | None:
    """The PostgreSQL URL tests use, if any (CI always has one)."""
    url = os.environ.get("TEND_TEST_DATABASE_URL")
    if url:
        return url
    return PG_DEFAULT_URL if IN_CI else None


_pg_checked: dict[str, str | None] = {}


def _postgres_problem(url: str) -> str | None:
    """Return why PostgreSQL at ``url`` is unusable, or ``None`` when it answers."""
    if url in _pg_checked:
        return _pg_checked[url]

    async def probe() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), 10))
        problem = None
    except Exception as exc:  # any failure means "not usable"; the reason is reported
        problem = f"{type(exc).__name__}: {exc}"
    _pg_checked[url] = problem
    return problem


def _backend_params() -> list[Any]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]


@pytest.fixture(autouse=True, scope="session")
def _no_real_model_requests():
    """No test reaches a real model provider: model requests off, HTTP to loopback only."""
    from tests.assistant.mock_provider import block_real_model_requests

    with block_real_model_requests():
        yield


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's TEND_* variables and .env out of every test."""
    for name in list(os.environ):
        if name.startswith("TEND_") and name != "TEND_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("TEND_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test: ``sqlite`` always, ``postgresql`` when configured."""
    name: str = request.param
    if name == "postgresql":
        url = postgres_url()
        if url is None:
            pytest.skip("PostgreSQL tests need TEND_TEST_DATABASE_URL (CI sets it)")
        problem = _postgres_problem(url)
        if problem is not None:
            if IN_CI:
                pytest.fail(f"PostgreSQL at {url} is unreachable in CI: {problem}")
            pytest.skip(f"PostgreSQL at {url} is unreachable: {problem}")
    return name


@pytest.fixture
async def database_target(backend: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Settings fields pointing at an empty database of the chosen backend."""
    if backend == "sqlite":
        yield {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db' / 'tend.db'}"}
        return
    url = postgres_url()
    assert url is not None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        yield {"database_url": url, "database_schema": schema}
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        await admin.dispose()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: its own data dir, cheap password hashing, no .env file."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "password_hash_memory_kib": 1024,
        "password_hash_time_cost": 1,
        "log_format": "text",
        "access_log": False,
        "monitor": False,  # the monitor loop runs only in tests that ask for it
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path, database_target: dict[str, Any]) -> Settings:
    """Settings for a fresh database of the backend under test."""
    return make_settings(tmp_path, **database_target)


_PASSWORD_LINE = re.compile(r"password: (\S+)")


@dataclass
class Harness:
    """A running app with an HTTP client and helpers to make users and credentials."""

    app: FastAPI
    client: httpx.AsyncClient
    context: AppContext
    admin_password: str
    banner: str
    _counter: int = field(default=0)

    async def user(
        self,
        role: Role,
        *,
        name: str | None = None,
        password: str = "password-123",
        disabled: bool = False,
    ) -> User:
        """Create a user directly in the database."""
        self._counter += 1
        username = name or f"{role.value}{self._counter}"
        async with self.context.database.session() as session:
            user = await create_user(
                session, self.context.passwords, username=username, password=password, role=role
            )
            user.disabled = disabled
        return user

    def bearer(self, token: str) -> dict[str, str]:
        """Authorization header for a token."""
        return {"Authorization": f"Bearer {token}"}

    def jwt(self, user: User, ttl: int | None = None) -> dict[str, str]:
        """Headers carrying a signed access token for ``user``."""
        return self.bearer(self.context.access_tokens.issue(user.id, ttl_seconds=ttl))

    async def api_token(
        self, user: User, *, role: Role | None = None, expired: bool = False, revoked: bool = False
    ) -> dict[str, str]:
        """Headers carrying an API token for ``user``, optionally expired or revoked."""
        async with self.context.database.session() as session:
            db_user = await session.get(User, user.id)
            assert db_user is not None
            token, secret = await create_token(
                session,
                db_user,
                name="test",
                expires_in_days=None,
                role=role,
                ceiling=Role(db_user.role),
            )
            if expired:
                token.expires_at = utcnow() - timedelta(seconds=1)
            if revoked:
                token.revoked_at = utcnow()
        return self.bearer(secret)

    async def role_headers(self, role: Role) -> dict[str, str]:
        """Access-token headers for a new user with ``role``."""
        return self.jwt(await self.user(role))

    async def token_row(self, token_id: int) -> ApiToken | None:
        """Read an API token row."""
        async with self.context.database.session() as session:
            return await session.get(ApiToken, token_id)


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[str]:
    """Run an app's lifespan, capturing what it prints on stderr (the first-run banner)."""
    banner = io.StringIO()
    with contextlib.redirect_stderr(banner):
        manager = app.router.lifespan_context(app)
        await manager.__aenter__()
    try:
        yield banner.getvalue()
    finally:
        await manager.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def start_harness(settings: Settings, *, first_start: bool = True) -> AsyncIterator[Harness]:
    """Start an app on ``settings`` with a client; the admin password comes from the banner."""
    app = create_app(settings)
    async with running(app) as banner:
        match = _PASSWORD_LINE.search(banner)
        assert match or not first_start, f"first start printed no admin password: {banner!r}"
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://tend.test", timeout=120
        ) as client:
            yield Harness(
                app=app,
                client=client,
                context=app.state.context,
                admin_password=match.group(1) if match else "",
                banner=banner,
            )


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    """A started app on a fresh database of the backend under test."""
    async with start_harness(settings) as started:
        yield started


@pytest.fixture
async def client(harness: Harness) -> httpx.AsyncClient:
    """The harness's HTTP client."""
    return harness.client


@pytest.fixture
async def admin_headers(harness: Harness) -> dict[str, str]:
    """Headers of the first admin, signed in through the token endpoint."""
    response = await harness.client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": harness.admin_password}
    )
    assert response.status_code == 200, response.text
    return harness.bearer(response.json()["access_token"])


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on SQLite only, for tests that are not about the database backend."""
    return make_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}")
