"""The rules file, loaded by the server, adjusts the built-in policy per host tag and role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tend.auth.models import Role
from tests.conftest import Harness, make_settings, start_harness

RULES = """
rules:
  - id: db-read-only
    match: {tags: [db]}
    read_only: true
  - id: operators-restart-nginx
    match: {roles: [operator]}
    allow: [[systemctl, restart, nginx]]
  - id: no-reboot
    deny: [[reboot, "..."]]
"""


@pytest.fixture
async def ruled(tmp_path: Path) -> AsyncIterator[Harness]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings = make_settings(
        tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", policy_file=rules
    )
    async with start_harness(settings) as harness:
        yield harness


async def check(h: Harness, headers: dict[str, str], argv: list[str], host: str) -> dict:
    response = await h.client.post(
        "/api/v1/policy/check", json={"argv": argv, "host": host}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_rules_per_tag_and_role(ruled: Harness) -> None:
    admin = await ruled.role_headers(Role.ADMIN)
    operator = await ruled.role_headers(Role.OPERATOR)
    await ruled.client.post(
        "/api/v1/hosts", json={"name": "db-1", "transport": "local", "tags": ["db"]}, headers=admin
    )
    on_db = await check(ruled, admin, ["touch", "/tmp/x"], "db-1")
    assert on_db["risk"] == "forbidden"
    assert on_db["rule"] == "db-read-only"
    assert (await check(ruled, admin, ["df", "-h"], "db-1"))["risk"] == "read"
    assert (await check(ruled, operator, ["systemctl", "restart", "nginx"], "local"))[
        "risk"
    ] == "read"
    assert (await check(ruled, admin, ["systemctl", "restart", "nginx"], "local"))[
        "risk"
    ] == "change"
    assert (await check(ruled, admin, ["reboot", "now"], "local"))["risk"] == "forbidden"
    refused = await ruled.client.post(
        "/api/v1/runs", json={"argv": ["touch", "/tmp/x"], "targets": ["db-1"]}, headers=admin
    )
    assert refused.status_code == 403
    assert refused.json()["detail"]["reason"]


async def test_the_riskiest_host_decides_a_fan_out(ruled: Harness) -> None:
    admin = await ruled.role_headers(Role.ADMIN)
    await ruled.client.post(
        "/api/v1/hosts", json={"name": "db-2", "transport": "local", "tags": ["db"]}, headers=admin
    )
    response = await ruled.client.post(
        "/api/v1/runs", json={"argv": ["touch", "/tmp/y"], "targets": ["all"]}, headers=admin
    )
    assert response.status_code == 403
