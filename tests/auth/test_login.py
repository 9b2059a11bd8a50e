"""Signing in: the OAuth2 password endpoint, access tokens, throttling of failed logins."""

from __future__ import annotations

import jwt
import pytest

from tend.auth.models import Role
from tests.conftest import Harness

TOKEN_URL = "/api/v1/auth/token"


async def test_admin_signs_in_and_the_token_works(harness: Harness) -> None:
    response = await harness.client.post(
        TOKEN_URL, data={"username": "admin", "password": harness.admin_password}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == harness.context.settings.access_token_ttl
    me = await harness.client.get("/api/v1/auth/me", headers=harness.bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    assert me.json()["effective_role"] == "admin"
    assert me.json()["via"] == "access_token"
    assert "password_hash" not in me.text


async def test_username_is_case_insensitive(harness: Harness) -> None:
    response = await harness.client.post(
        TOKEN_URL, data={"username": "ADMIN", "password": harness.admin_password}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "wrong-password"), ("nobody", "whatever-123"), ("admin", "")],
)
async def test_bad_credentials_are_401_without_saying_which(
    harness: Harness, username: str, password: str
) -> None:
    response = await harness.client.post(
        TOKEN_URL, data={"username": username, "password": password}
    )
    assert response.status_code in (401, 422)
    if response.status_code == 401:
        assert response.json() == {
            "error": "Unauthorized",
            "detail": "invalid username or password",
            "request_id": response.headers["x-request-id"],
        }
        assert response.headers["www-authenticate"] == "Bearer"


async def test_missing_form_fields_are_422(harness: Harness) -> None:
    response = await harness.client.post(TOKEN_URL, data={"username": "admin"})
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationError"
    assert any("password" in item["loc"] for item in response.json()["detail"])


async def test_disabled_user_cannot_sign_in(harness: Harness) -> None:
    await harness.user(Role.OPERATOR, name="gone", password="password-123", disabled=True)
    response = await harness.client.post(
        TOKEN_URL, data={"username": "gone", "password": "password-123"}
    )
    assert response.status_code == 401


async def test_failed_logins_per_username_are_throttled_with_retry_after(harness: Harness) -> None:
    limit = harness.context.settings.login_max_failures_per_user
    for _ in range(limit):
        response = await harness.client.post(
            TOKEN_URL, data={"username": "admin", "password": "wrong-password"}
        )
        assert response.status_code == 401
    response = await harness.client.post(
        TOKEN_URL, data={"username": "admin", "password": harness.admin_password}
    )
    assert response.status_code == 429
    assert response.json()["error"] == "RateLimited"
    assert 0 < int(response.headers["retry-after"]) <= harness.context.settings.login_window


async def test_failed_logins_per_client_are_throttled(harness: Harness) -> None:
    limit = harness.context.settings.login_max_failures_per_client
    for i in range(limit):
        response = await harness.client.post(
            TOKEN_URL, data={"username": f"user{i}", "password": "wrong-password"}
        )
        assert response.status_code == 401
    response = await harness.client.post(
        TOKEN_URL, data={"username": "someone-else", "password": "wrong-password"}
    )
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_success_clears_the_username_count(harness: Harness) -> None:
    limit = harness.context.settings.login_max_failures_per_user
    for _ in range(limit - 1):
        await harness.client.post(TOKEN_URL, data={"username": "admin", "password": "nope-nope"})
    ok = await harness.client.post(
        TOKEN_URL, data={"username": "admin", "password": harness.admin_password}
    )
    assert ok.status_code == 200
    for _ in range(limit - 1):
        again = await harness.client.post(
            TOKEN_URL, data={"username": "admin", "password": "nope-nope"}
        )
        assert again.status_code == 401


async def test_expired_access_token_is_refused(harness: Harness) -> None:
    user = await harness.user(Role.ADMIN)
    response = await harness.client.get("/api/v1/auth/me", headers=harness.jwt(user, ttl=-5))
    assert response.status_code == 401
    assert response.json()["detail"] == "access token expired"


async def test_forged_access_token_is_refused(harness: Harness) -> None:
    user = await harness.user(Role.VIEWER)
    forged = jwt.encode(
        {
            "sub": str(user.id),
            "aud": "tend",
            "iss": "tend",
            "exp": 4102444800,
            "iat": 0,
            "jti": "x",
        },
        "not-the-key-but-long-enough-for-hs256-32b",
        algorithm="HS256",
    )
    response = await harness.client.get("/api/v1/auth/me", headers=harness.bearer(forged))
    assert response.status_code == 401
    unsigned = jwt.encode({"sub": str(user.id)}, key=None, algorithm="none")
    response = await harness.client.get("/api/v1/auth/me", headers=harness.bearer(unsigned))
    assert response.status_code == 401


async def test_disabling_a_user_refuses_their_live_token_at_once(harness: Harness) -> None:
    user = await harness.user(Role.OPERATOR)
    headers = harness.jwt(user)
    assert (await harness.client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    admin = harness.jwt(await harness.user(Role.ADMIN))
    patch = await harness.client.patch(
        f"/api/v1/users/{user.username}", json={"disabled": True}, headers=admin
    )
    assert patch.status_code == 200
    assert (await harness.client.get("/api/v1/auth/me", headers=headers)).status_code == 401


async def test_password_is_stored_as_argon2_hash(harness: Harness) -> None:
    user = await harness.user(Role.VIEWER, password="a-secret-password")
    assert user.password_hash.startswith("$argon2id$")
    assert "a-secret-password" not in user.password_hash
