"""The full auth matrix: every endpoint x every kind of caller -> the expected status.

Endpoints come from the app's own OpenAPI document, and each endpoint's minimum role from the
OAuth2 scope its role dependency declares there, so a new endpoint cannot escape this test: one
without an auth dependency fails it unless it is listed as public here.
"""

from __future__ import annotations

from typing import Any

from tend.auth.models import Role, User
from tests.conftest import Harness

PUBLIC = {("get", "/health"), ("get", "/ready"), ("post", "/api/v1/auth/token")}
UNAUTHENTICATED = (
    "anonymous",
    "garbage",
    "expired_jwt",
    "expired_api_token",
    "revoked_api_token",
    "disabled_jwt",
    "disabled_api_token",
)
ROLE_OF = {
    "viewer": Role.VIEWER,
    "operator": Role.OPERATOR,
    "admin": Role.ADMIN,
    "admin_api_token": Role.ADMIN,
    "admin_narrowed_to_viewer": Role.VIEWER,
}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def required_role(method: str, path: str, op: dict[str, Any]) -> Role | None:
    security = op.get("security")
    if not security:
        assert (method, path) in PUBLIC, f"{method.upper()} {path} has no auth dependency"
        return None
    scopes = [
        scope for requirement in security for scopes in requirement.values() for scope in scopes
    ]
    assert len(scopes) == 1, f"{method.upper()} {path} must declare exactly one role: {scopes}"
    return Role(scopes[0])


def concrete(path: str, op: dict[str, Any]) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = "999999" if param["schema"].get("type") == "integer" else "zz-missing"
            path = path.replace("{" + param["name"] + "}", value)
    return path


async def identities(h: Harness) -> dict[str, dict[str, str]]:
    disabled = await h.user(Role.ADMIN, name="disabled-admin")
    disabled_token = await h.api_token(disabled)
    admin = await h.user(Role.ADMIN)
    ids = {
        "anonymous": {},
        "garbage": h.bearer("not-a-token"),
        "expired_jwt": h.jwt(admin, ttl=-1),
        "expired_api_token": await h.api_token(admin, expired=True),
        "revoked_api_token": await h.api_token(admin, revoked=True),
        "disabled_jwt": h.jwt(disabled),
        "disabled_api_token": disabled_token,
        "viewer": await h.role_headers(Role.VIEWER),
        "operator": await h.role_headers(Role.OPERATOR),
        "admin": h.jwt(admin),
        "admin_api_token": await h.api_token(admin),
        "admin_narrowed_to_viewer": await h.api_token(admin, role=Role.VIEWER),
    }
    async with h.context.database.session() as session:
        row = await session.get(User, disabled.id)
        assert row is not None
        row.disabled = True
    return ids


async def test_auth_matrix(harness: Harness) -> None:
    spec = harness.app.openapi()
    ops = operations(spec)
    assert len(ops) >= 15
    callers = await identities(harness)
    failures: list[str] = []
    checked = 0
    for method, path, op in ops:
        minimum = required_role(method, path, op)
        if minimum is None:
            continue
        url = concrete(path, op)
        body = {"json": {}} if "requestBody" in op else {}
        for caller, headers in callers.items():
            response = await harness.client.request(method, url, headers=headers, **body)
            status = response.status_code
            checked += 1
            if caller in UNAUTHENTICATED:
                ok = status == 401
                expected = "401"
            elif ROLE_OF[caller].allows(minimum):
                ok = status not in (401, 403) and status < 500
                expected = "not 401/403/5xx"
            else:
                ok = status == 403
                expected = "403"
            if not ok:
                failures.append(
                    f"{method.upper()} {url} as {caller}: {status}, expected {expected}"
                )
            assert response.headers["content-type"].startswith("application/json") or status == 204
    assert not failures, "\n".join(failures)
    assert checked >= len(callers) * 14


async def test_public_endpoints_need_no_auth(harness: Harness) -> None:
    assert (await harness.client.get("/health")).status_code == 200
    assert (await harness.client.get("/ready")).status_code == 200
    response = await harness.client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": harness.admin_password}
    )
    assert response.status_code == 200
