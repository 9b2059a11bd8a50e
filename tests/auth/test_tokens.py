"""API tokens: shown once, stored hashed, narrowed, expired, revoked at once."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from tend.auth.models import ApiToken, Role
from tests.conftest import Harness


async def test_token_is_shown_once_and_stored_hashed(harness: Harness) -> None:
    headers = harness.jwt(await harness.user(Role.OPERATOR))
    created = await harness.client.post("/api/v1/tokens", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("tend_")
    listed = await harness.client.get("/api/v1/tokens", headers=headers)
    assert listed.status_code == 200
    assert secret not in listed.text
    assert [t["name"] for t in listed.json()] == ["ci"]
    async with harness.context.database.session() as session:
        stored = (await session.execute(select(ApiToken))).scalars().all()
    assert [t.token_hash for t in stored] == [hashlib.sha256(secret.encode()).hexdigest()]
    me = await harness.client.get("/api/v1/auth/me", headers=harness.bearer(secret))
    assert me.status_code == 200
    assert me.json()["via"] == "api_token"


async def test_revoked_token_is_refused_at_once(harness: Harness) -> None:
    headers = harness.jwt(await harness.user(Role.VIEWER))
    created = await harness.client.post("/api/v1/tokens", json={"name": "x"}, headers=headers)
    token = harness.bearer(created.json()["token"])
    assert (await harness.client.get("/api/v1/hosts", headers=token)).status_code == 200
    revoked = await harness.client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = await harness.client.get("/api/v1/hosts", headers=token)
    assert response.status_code == 401
    assert response.json()["detail"] == "API token revoked"


async def test_expiring_token(harness: Harness) -> None:
    headers = harness.jwt(await harness.user(Role.VIEWER))
    created = await harness.client.post(
        "/api/v1/tokens", json={"name": "short", "expires_in_days": 1}, headers=headers
    )
    assert created.status_code == 201
    assert created.json()["expires_at"] is not None
    expired = await harness.api_token(await harness.user(Role.ADMIN), expired=True)
    response = await harness.client.get("/api/v1/hosts", headers=expired)
    assert response.status_code == 401
    assert response.json()["detail"] == "API token expired"


async def test_token_can_be_narrowed_but_not_widened(harness: Harness) -> None:
    operator = harness.jwt(await harness.user(Role.OPERATOR))
    narrowed = await harness.client.post(
        "/api/v1/tokens", json={"name": "ro", "role": "viewer"}, headers=operator
    )
    assert narrowed.status_code == 201
    me = await harness.client.get(
        "/api/v1/auth/me", headers=harness.bearer(narrowed.json()["token"])
    )
    assert me.json()["role"] == "operator"
    assert me.json()["effective_role"] == "viewer"
    widened = await harness.client.post(
        "/api/v1/tokens", json={"name": "up", "role": "admin"}, headers=operator
    )
    assert widened.status_code == 422
    # A narrowed token cannot mint a token stronger than itself.
    viewer_token = harness.bearer(narrowed.json()["token"])
    minted = await harness.client.post("/api/v1/tokens", json={"name": "m"}, headers=viewer_token)
    assert minted.status_code == 201
    assert minted.json()["role"] == "viewer"


async def test_narrowed_admin_token_cannot_use_admin_endpoints(harness: Harness) -> None:
    admin = await harness.user(Role.ADMIN)
    token = await harness.api_token(admin, role=Role.VIEWER)
    assert (await harness.client.get("/api/v1/hosts", headers=token)).status_code == 200
    assert (await harness.client.get("/api/v1/users", headers=token)).status_code == 403


async def test_others_tokens_look_absent_and_admins_may_revoke_them(harness: Harness) -> None:
    alice = harness.jwt(await harness.user(Role.OPERATOR))
    bob = harness.jwt(await harness.user(Role.OPERATOR))
    created = await harness.client.post("/api/v1/tokens", json={"name": "a"}, headers=alice)
    token_id = created.json()["id"]
    assert (
        await harness.client.delete(f"/api/v1/tokens/{token_id}", headers=bob)
    ).status_code == 404
    assert (await harness.client.get("/api/v1/tokens?all=true", headers=bob)).status_code == 403
    admin = harness.jwt(await harness.user(Role.ADMIN))
    everyone = await harness.client.get("/api/v1/tokens?all=true", headers=admin)
    assert token_id in [t["id"] for t in everyone.json()]
    revoke = await harness.client.delete(f"/api/v1/tokens/{token_id}", headers=admin)
    assert revoke.status_code == 200
    again = await harness.client.delete(f"/api/v1/tokens/{token_id}", headers=admin)
    assert again.status_code == 200
    assert (await harness.client.delete("/api/v1/tokens/999999", headers=admin)).status_code == 404


async def test_token_create_rejects_bad_input(harness: Harness) -> None:
    headers = harness.jwt(await harness.user(Role.VIEWER))
    for body in (
        {},
        {"name": ""},
        {"name": "x", "expires_in_days": 0},
        {"name": "x", "extra": 1},
        {"name": "x", "role": "root"},
    ):
        response = await harness.client.post("/api/v1/tokens", json=body, headers=headers)
        assert response.status_code == 422, body


async def test_last_used_is_recorded(harness: Harness) -> None:
    headers = harness.jwt(await harness.user(Role.VIEWER))
    created = await harness.client.post("/api/v1/tokens", json={"name": "u"}, headers=headers)
    await harness.client.get("/api/v1/hosts", headers=harness.bearer(created.json()["token"]))
    row = await harness.token_row(created.json()["id"])
    assert row is not None
    assert row.last_used_at is not None
