"""First run: an empty database gets an admin with a random password, shown once, stored hashed."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from tend.app import create_app
from tend.auth.models import User
from tend.hosts.models import Host
from tend.settings import Settings
from tests.conftest import running


async def test_first_start_creates_admin_once(settings: Settings) -> None:
    app = create_app(settings)
    async with running(app) as banner:
        match = re.search(r"password: (\S+)", banner)
        assert match
        password = match.group(1)
        assert len(password) >= 20
        async with app.state.context.database.session() as session:
            users = (await session.execute(select(User))).scalars().all()
            hosts = (await session.execute(select(Host.name, Host.transport))).all()
        assert [(u.username, u.role) for u in users] == [("admin", "admin")]
        assert password not in users[0].password_hash
        assert users[0].password_hash.startswith("$argon2id$")
        assert [tuple(h) for h in hosts] == [("local", "local")]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            login = await client.post(
                "/api/v1/auth/token", data={"username": "admin", "password": password}
            )
            assert login.status_code == 200
    again = create_app(settings)
    async with running(again) as second_banner:
        assert "password" not in second_banner


async def test_deleted_local_host_stays_deleted(settings: Settings) -> None:
    app = create_app(settings)
    async with running(app), app.state.context.database.session() as session:
        host = (await session.execute(select(Host))).scalar_one()
        await session.delete(host)
    async with running(create_app(settings)):
        pass
    again = create_app(settings)
    async with running(again), again.state.context.database.session() as session:
        assert (await session.execute(select(Host))).first() is None


async def test_secret_never_appears_in_the_log(settings: Settings, capfd) -> None:
    app = create_app(settings.model_copy(update={"log_format": "json"}))
    async with running(app) as banner:
        password = re.search(r"password: (\S+)", banner)
    assert password
    captured = capfd.readouterr()
    key = app.state.context.settings.signing_key()
    assert key not in captured.err + captured.out
