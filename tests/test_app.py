"""Application-wide behaviour: probes, docs, error shape, request ids, body cap."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter

from tend.app import create_app
from tend.db import Database, build_engine
from tend.settings import Settings
from tests.conftest import Harness, make_settings, running


async def test_health_and_ready(harness: Harness) -> None:
    health = await harness.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    ready = await harness.client.get("/ready")
    assert ready.json()["status"] == "ready"


async def test_ready_is_503_when_the_database_is_gone(harness: Harness) -> None:
    original = harness.context.database
    # A closed port on loopback stands in for a database that went away.
    dead = Database(
        build_engine(harness.context.settings, "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    )
    harness.context.database = dead
    try:
        response = await harness.client.get("/ready")
        health = await harness.client.get("/health")
    finally:
        harness.context.database = original
        await dead.dispose()
    assert response.status_code == 503
    assert response.json()["error"] == "ServiceUnavailable"
    assert health.status_code == 200


async def test_openapi_and_docs_are_served(harness: Harness) -> None:
    spec = await harness.client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/api/v1/hosts" in spec.json()["paths"]
    docs = await harness.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_unknown_route_is_json_404(harness: Harness) -> None:
    response = await harness.client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"
    method = await harness.client.put("/health")
    assert method.status_code == 405
    assert method.json()["error"] == "MethodNotAllowed"


async def test_request_id_is_generated_or_echoed(harness: Harness) -> None:
    generated = await harness.client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await harness.client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    hostile = await harness.client.get("/health", headers={"X-Request-ID": 'x" onload=1 ' * 10})
    assert hostile.headers["x-request-id"] != 'x" onload=1 ' * 10
    failed = await harness.client.get("/api/v1/hosts", headers={"X-Request-ID": "req-7"})
    assert failed.json()["request_id"] == "req-7"


async def test_malformed_json_is_422(harness: Harness, admin_headers: dict[str, str]) -> None:
    headers = {**admin_headers, "Content-Type": "application/json"}
    response = await harness.client.post("/api/v1/hosts", content=b'{"name": ', headers=headers)
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationError"
    wrong = await harness.client.post("/api/v1/hosts", json=["a", "list"], headers=admin_headers)
    assert wrong.status_code == 422


async def test_oversize_body_is_413(harness: Harness, admin_headers: dict[str, str]) -> None:
    big = b'{"name": "' + b"a" * (harness.context.settings.max_body_bytes + 10) + b'"}'
    headers = {**admin_headers, "Content-Type": "application/json"}
    declared = await harness.client.post("/api/v1/hosts", content=big, headers=headers)
    assert declared.status_code == 413
    assert declared.json()["error"] == "PayloadTooLarge"

    async def chunks():  # no Content-Length: the cap counts bytes as they arrive
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = await harness.client.post("/api/v1/hosts", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "PayloadTooLarge"


async def test_unexpected_error_is_500_without_a_traceback(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings)
    boom = APIRouter()

    @boom.get("/boom")
    async def explode() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.include_router(boom)
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"] == "InternalError"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"] == response.json()["request_id"]


@pytest.mark.parametrize("cap", [2048])
async def test_body_cap_is_a_setting(tmp_path, cap: int) -> None:
    settings = make_settings(
        tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}", max_body_bytes=cap
    )
    app = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/api/v1/auth/token", content=b"x" * (cap + 1))
    assert response.status_code == 413
