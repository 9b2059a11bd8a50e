"""Resolved API tokens are reused for a few seconds, and never outlive a change made here."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import update

from tend.auth.cache import ApiTokenCache
from tend.auth.models import ApiToken, Role, User
from tend.auth.service import Principal
from tend.db import utcnow
from tests.conftest import Harness

ME = "/api/v1/auth/me"


async def _token_id(harness: Harness, headers: dict[str, str]) -> int:
    listed = await harness.client.get("/api/v1/tokens", headers=headers)
    assert listed.status_code == 200, listed.text
    return int(listed.json()[0]["id"])


async def test_a_revoked_token_stops_at_once_although_it_was_cached(harness: Harness) -> None:
    user = await harness.user(Role.OPERATOR)
    headers = await harness.api_token(user)
    assert (await harness.client.get(ME, headers=headers)).status_code == 200  # now cached
    token_id = await _token_id(harness, headers)
    revoked = await harness.client.delete(f"/api/v1/tokens/{token_id}", headers=headers)
    assert revoked.status_code == 200
    after = await harness.client.get(ME, headers=headers)
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]


async def test_role_changes_and_disabling_apply_to_cached_tokens_at_once(harness: Harness) -> None:
    admin = await harness.role_headers(Role.ADMIN)
    user = await harness.user(Role.OPERATOR)
    headers = await harness.api_token(user)
    assert (await harness.client.get(ME, headers=headers)).json()["role"] == "operator"
    demoted = await harness.client.patch(
        f"/api/v1/users/{user.username}", json={"role": "viewer"}, headers=admin
    )
    assert demoted.status_code == 200
    assert (await harness.client.get(ME, headers=headers)).json()["role"] == "viewer"
    disabled = await harness.client.patch(
        f"/api/v1/users/{user.username}", json={"disabled": True}, headers=admin
    )
    assert disabled.status_code == 200
    assert (await harness.client.get(ME, headers=headers)).status_code == 401


async def test_a_change_made_elsewhere_is_seen_within_the_cache_lifetime(harness: Harness) -> None:
    harness.context.token_cache.ttl = 0.3
    user = await harness.user(Role.VIEWER)
    headers = await harness.api_token(user)
    assert (await harness.client.get(ME, headers=headers)).status_code == 200
    # Another API replica (or `tend` on the command line) revokes it in the database.
    async with harness.context.database.session() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.user_id == user.id).values(revoked_at=utcnow())
        )
    assert (await harness.client.get(ME, headers=headers)).status_code == 200  # documented lag
    await asyncio.sleep(0.4)
    assert (await harness.client.get(ME, headers=headers)).status_code == 401


async def test_without_the_cache_every_request_looks_the_token_up(harness: Harness) -> None:
    harness.context.token_cache.ttl = 0
    user = await harness.user(Role.VIEWER)
    headers = await harness.api_token(user)
    assert (await harness.client.get(ME, headers=headers)).status_code == 200
    async with harness.context.database.session() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.user_id == user.id).values(revoked_at=utcnow())
        )
    assert (await harness.client.get(ME, headers=headers)).status_code == 401


def _principal(user_id: int) -> Principal:
    return Principal(
        user=User(id=user_id, username=f"u{user_id}"), role=Role.VIEWER, via="api_token"
    )


def test_the_cache_forgets_expired_tokens_and_the_least_recently_used() -> None:
    cache = ApiTokenCache(ttl=60, max_entries=2)
    cache.put("expired", _principal(1), utcnow() - timedelta(seconds=1))
    assert cache.get("expired") is None
    cache.put("a", _principal(2), None)
    cache.put("b", _principal(3), None)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", _principal(4), None)
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    cache.clear()
    assert cache.get("a") is None


def test_entries_go_stale_after_the_ttl() -> None:
    cache = ApiTokenCache(ttl=0.05)
    cache.put("a", _principal(1), None)
    assert cache.get("a") is not None
    time.sleep(0.1)
    assert cache.get("a") is None
