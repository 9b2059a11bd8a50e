"""User management endpoints (admin only)."""

from __future__ import annotations

from tend.auth.models import Role
from tests.conftest import Harness


async def test_admin_manages_users(harness: Harness, admin_headers: dict[str, str]) -> None:
    client = harness.client
    created = await client.post(
        "/api/v1/users",
        json={"username": "Alice", "password": "correct-horse", "role": "operator"},
        headers=admin_headers,
    )
    assert created.status_code == 201
    assert created.json()["username"] == "alice"
    assert "password" not in created.text
    listed = await client.get("/api/v1/users", headers=admin_headers)
    assert [u["username"] for u in listed.json()] == ["admin", "alice"]
    one = await client.get("/api/v1/users/alice", headers=admin_headers)
    assert one.json()["role"] == "operator"
    login = await client.post(
        "/api/v1/auth/token", data={"username": "alice", "password": "correct-horse"}
    )
    assert login.status_code == 200
    changed = await client.patch(
        "/api/v1/users/alice",
        json={"role": "viewer", "password": "another-pass"},
        headers=admin_headers,
    )
    assert changed.json()["role"] == "viewer"
    old = await client.post(
        "/api/v1/auth/token", data={"username": "alice", "password": "correct-horse"}
    )
    assert old.status_code == 401
    deleted = await client.delete("/api/v1/users/alice", headers=admin_headers)
    assert deleted.status_code == 204
    assert (await client.get("/api/v1/users/alice", headers=admin_headers)).status_code == 404


async def test_duplicate_user_is_409(harness: Harness, admin_headers: dict[str, str]) -> None:
    body = {"username": "bob", "password": "password-123"}
    assert (
        await harness.client.post("/api/v1/users", json=body, headers=admin_headers)
    ).status_code == 201
    again = await harness.client.post(
        "/api/v1/users", json={**body, "username": "BOB"}, headers=admin_headers
    )
    assert again.status_code == 409
    assert again.json()["error"] == "Conflict"


async def test_user_input_is_validated(harness: Harness, admin_headers: dict[str, str]) -> None:
    cases = [
        ({"username": "x y", "password": "password-123"}, "username"),
        ({"username": "bob", "password": "short"}, "password"),
        ({"username": "bob", "password": "password-123", "role": "root"}, "role"),
        ({"username": "bob", "password": "password-123", "is_admin": True}, "is_admin"),
        ({"password": "password-123"}, "username"),
    ]
    for body, field in cases:
        response = await harness.client.post("/api/v1/users", json=body, headers=admin_headers)
        assert response.status_code == 422, body
        assert any(field in item["loc"] for item in response.json()["detail"]), response.json()


async def test_last_admin_cannot_be_removed(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    for request in (
        harness.client.patch("/api/v1/users/admin", json={"role": "viewer"}, headers=admin_headers),
        harness.client.patch("/api/v1/users/admin", json={"disabled": True}, headers=admin_headers),
        harness.client.delete("/api/v1/users/admin", headers=admin_headers),
    ):
        response = await request
        assert response.status_code == 409
        assert "last enabled admin" in response.json()["detail"]
    await harness.user(Role.ADMIN, name="second")
    demoted = await harness.client.patch(
        "/api/v1/users/admin", json={"role": "operator"}, headers=admin_headers
    )
    assert demoted.status_code == 200


async def test_deleting_a_user_removes_their_tokens(
    harness: Harness, admin_headers: dict[str, str]
) -> None:
    user = await harness.user(Role.OPERATOR, name="temp")
    token = await harness.api_token(user)
    assert (await harness.client.get("/api/v1/hosts", headers=token)).status_code == 200
    assert (
        await harness.client.delete("/api/v1/users/temp", headers=admin_headers)
    ).status_code == 204
    assert (await harness.client.get("/api/v1/hosts", headers=token)).status_code == 401


async def test_unknown_user_is_404(harness: Harness, admin_headers: dict[str, str]) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await harness.client.request(
            method,
            "/api/v1/users/ghost",
            headers=admin_headers,
            json={} if method == "PATCH" else None,
        )
        assert response.status_code == 404, method
