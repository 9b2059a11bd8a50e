"""Shared pieces of the alerting tests: a controllable clock, snapshots, a started app, and a
real HTTP receiver on 127.0.0.1 that answers with scripted statuses."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tend.auth.models import Role
from tend.monitoring.latest import LatestValues
from tend.monitoring.registry import Sample, Snapshot
from tests.conftest import Harness, make_settings, start_harness

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def snapshot(host: str, at: datetime, *samples: Sample, error: str | None = None) -> Snapshot:
    """A collected snapshot; ``host_up`` is added (0 when ``error`` is set and no samples)."""
    up = 0.0 if error is not None and not samples else 1.0
    return Snapshot(host=host, at=at, samples=[*samples, Sample.of("host_up", up)], error=error)


def fs(mount: str, used: float) -> Sample:
    return Sample.of("filesystem_used_percent", used, mount=mount)


@dataclass
class Alerting:
    """A started app (scheduler and collection off), its clock, and snapshots to evaluate."""

    h: Harness
    clock: FakeClock
    operator: dict[str, str]
    viewer: dict[str, str]
    admin: dict[str, str]
    latest: LatestValues = field(default_factory=LatestValues)

    async def put(self, *snapshots: Snapshot) -> None:
        for item in snapshots:
            await self.latest.put(item)

    async def evaluate(self) -> Any:
        return await self.h.context.alerts.evaluate(self.latest)

    async def add_host(self, name: str, *tags: str) -> None:
        response = await self.h.client.post(
            "/api/v1/hosts",
            json={"name": name, "address": "10.0.0.1", "tags": list(tags)},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text

    async def alerts(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.h.client.get("/api/v1/alerts", params=params, headers=self.viewer)
        assert response.status_code == 200, response.text
        return list(response.json())

    async def set_rules_enabled(self, enabled: bool, *names: str) -> None:
        for name in names:
            response = await self.h.client.patch(
                f"/api/v1/alerts/rules/{name}", json={"enabled": enabled}, headers=self.operator
            )
            assert response.status_code == 200, response.text


@contextlib.asynccontextmanager
async def started(tmp_path: Path, database_target: dict[str, Any], **overrides: Any):
    settings = make_settings(
        tmp_path,
        **database_target,
        **{"scheduler": False, "monitor": False, **overrides},
    )
    async with start_harness(settings) as h:
        clock = FakeClock()
        h.context.alerts.clock = clock
        yield Alerting(
            h=h,
            clock=clock,
            operator=await h.role_headers(Role.OPERATOR),
            viewer=await h.role_headers(Role.VIEWER),
            admin=await h.role_headers(Role.ADMIN),
        )


@pytest.fixture
async def alerting(tmp_path: Path, database_target: dict[str, Any]) -> AsyncIterator[Alerting]:
    """Alerting on a fresh database of the backend under test."""
    async with started(tmp_path, database_target) as ready:
        yield ready


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class WebhookReceiver:
    """A tiny HTTP/1.1 server on 127.0.0.1: answers each POST with the next scripted status."""

    def __init__(self, statuses: list[int] | None = None, default: int = 200) -> None:
        self.statuses = list(statuses or [])
        self.default = default
        self.received: list[Received] = []
        self.answered: list[int] = []
        self._server: asyncio.Server | None = None
        self.port = 0
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/secret-part"

    async def __aenter__(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(path, headers, json.loads(body or b"null")))
                status = self.statuses.pop(0) if self.statuses else self.default
                self.answered.append(status)
                payload = b'{"ok": true}' if status < 400 else b"receiver is down"
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n"
                    "Content-Type: text/plain\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                self.arrived.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
