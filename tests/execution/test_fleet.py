"""Fan-out over real sshd servers through the whole path (API -> policy -> audit -> SSH pool)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tend.auth.models import Role
from tend.execution.schemas import RunRequest
from tend.execution.service import Caller
from tests.conftest import Harness, make_settings, start_harness
from tests.execution.sshd import Sshd, SshdFactory, generate_key, next_address

CONNECT_TIMEOUT = 2.0


@pytest.fixture
async def fleet(sshd_factory: SshdFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    """A tend server (SQLite) whose SSH defaults point at the test sshd client key."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}",
        ssh_key_file=sshd_factory.client_key_path,
        ssh_known_hosts_file=known_hosts,
        ssh_connect_timeout=CONNECT_TIMEOUT,
    )
    async with start_harness(settings) as harness:
        yield harness


@pytest.fixture
def silent_listener() -> Iterator[tuple[str, int]]:
    """A TCP port that accepts connections but never says a word (a hung host)."""
    address = next_address()
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen(16)
    try:
        yield address, sock.getsockname()[1]
    finally:
        sock.close()


async def add_host(
    h: Harness, admin: dict[str, str], name: str, server: Sshd | None = None, **fields
) -> None:
    body = {"name": name, "tags": ["fleet"]}
    if server is not None:
        body.update(
            address=server.address,
            port=server.port,
            user=server.user,
            host_key=server.host_key_line,
        )
    body.update(fields)
    response = await h.client.post("/api/v1/hosts", json=body, headers=admin)
    assert response.status_code == 201, response.text


async def test_fan_out_with_a_host_down_one_hung_and_one_with_a_changed_key(
    fleet: Harness, sshd_factory: SshdFactory, silent_listener: tuple[str, int]
) -> None:
    admin = await fleet.role_headers(Role.ADMIN)
    healthy, down, changed = sshd_factory.start(3)
    await add_host(fleet, admin, "healthy", healthy)
    await add_host(fleet, admin, "down", down)
    await add_host(fleet, admin, "changed", changed)
    hung_address, hung_port = silent_listener
    await add_host(
        fleet,
        admin,
        "hung",
        None,
        address=hung_address,
        port=hung_port,
        user="root",
        host_key=healthy.host_key_line,
    )
    down.stop()
    changed.restart_with_new_host_key()

    # Arrival order is measured at the service's stream (httpx's ASGI transport buffers a
    # streamed body, so timing it over HTTP would measure nothing).
    execution = fleet.context.execution
    admin_user = (await fleet.client.get("/api/v1/auth/me", headers=admin)).json()
    caller = Caller(user_id=admin_user["id"], username=admin_user["username"], role=Role.ADMIN)
    request = RunRequest(argv=["uname", "-n"], targets=["tag:fleet"], timeout=10)
    hosts, verdict = await execution.prepare(caller, request)
    started = time.monotonic()
    arrivals: dict[str, float] = {}
    results: dict[str, dict] = {}
    async for result in execution.stream(caller, request.argv, hosts, 10, verdict):
        arrivals[result.host] = time.monotonic() - started
        results[result.host] = result.model_dump()
    elapsed = time.monotonic() - started

    assert results["healthy"]["status"] == "ok"
    assert results["healthy"]["stdout"].strip()
    assert results["down"]["error_kind"] == "refused"
    assert results["changed"]["error_kind"] == "host_key_changed"
    assert "CHANGED" in results["changed"]["error"].upper()
    assert results["hung"]["status"] in {"error", "timeout"}
    assert results["hung"]["error_kind"] == "timeout"
    # The hung host delays nobody: the others arrive well before its connect timeout.
    assert max(arrivals["healthy"], arrivals["down"], arrivals["changed"]) < CONNECT_TIMEOUT
    assert arrivals["hung"] >= CONNECT_TIMEOUT * 0.9
    assert elapsed < CONNECT_TIMEOUT + 8

    # The same over HTTP, streamed as NDJSON.
    response = await fleet.client.post(
        "/api/v1/runs/stream",
        json={"argv": ["uname", "-n"], "targets": ["tag:fleet"], "timeout": 10},
        headers=admin,
    )
    events = [json.loads(line) for line in response.text.splitlines()]
    assert events[0]["event"] == "start"
    assert events[-1]["event"] == "done"
    assert events[-1]["data"]["ok"] is False
    assert events[-1]["data"]["counts"]["ok"] == 1
    assert len([e for e in events if e["event"] == "host"]) == 4
    records = await fleet.client.get("/api/v1/audit", params={"event": "run_result"}, headers=admin)
    assert {r["host"] for r in records.json()} == {"healthy", "down", "changed", "hung"}


async def test_trust_on_first_use_pins_the_key_then_catches_a_change(
    fleet: Harness, sshd_factory: SshdFactory
) -> None:
    admin = await fleet.role_headers(Role.ADMIN)
    server = sshd_factory.one()
    await add_host(
        fleet,
        admin,
        "fresh",
        None,
        address=server.address,
        port=server.port,
        user=server.user,
        trust_on_first_use=True,
    )
    first = await fleet.client.post(
        "/api/v1/runs", json={"argv": ["uptime"], "targets": ["fresh"]}, headers=admin
    )
    assert first.json()["results"][0]["status"] == "ok", first.text
    host = (await fleet.client.get("/api/v1/hosts/fresh", headers=admin)).json()
    assert host["host_key"] == " ".join(server.host_key_line.split()[:2])
    pinned = await fleet.client.get(
        "/api/v1/audit", params={"event": "host_key_pinned"}, headers=admin
    )
    assert [r["host"] for r in pinned.json()] == ["fresh"]
    server.restart_with_new_host_key()
    second = await fleet.client.post(
        "/api/v1/runs", json={"argv": ["uptime"], "targets": ["fresh"]}, headers=admin
    )
    assert second.json()["results"][0]["error_kind"] == "host_key_changed"


async def test_unknown_host_key_is_refused_without_trust_on_first_use(
    fleet: Harness, sshd_factory: SshdFactory
) -> None:
    admin = await fleet.role_headers(Role.ADMIN)
    server = sshd_factory.one()
    await add_host(
        fleet, admin, "stranger", None, address=server.address, port=server.port, user=server.user
    )
    response = await fleet.client.post(
        "/api/v1/runs", json={"argv": ["uptime"], "targets": ["stranger"]}, headers=admin
    )
    [result] = response.json()["results"]
    assert result["error_kind"] == "host_key_unknown"
    host = (await fleet.client.get("/api/v1/hosts/stranger", headers=admin)).json()
    assert host["host_key"] is None


async def test_dns_and_auth_failures_are_named(
    fleet: Harness, sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    admin = await fleet.role_headers(Role.ADMIN)
    server = sshd_factory.one()
    await add_host(
        fleet,
        admin,
        "nowhere",
        None,
        address="host.nonexistent.invalid",
        host_key=server.host_key_line,
    )
    wrong_key = tmp_path / "other_key"
    generate_key(wrong_key)
    await add_host(fleet, admin, "badkey", server, key_file=str(wrong_key))
    response = await fleet.client.post(
        "/api/v1/runs",
        json={"argv": ["uptime"], "targets": ["nowhere", "badkey"]},
        headers=admin,
    )
    results = {r["host"]: r for r in response.json()["results"]}
    assert results["nowhere"]["error_kind"] == "dns"
    assert results["badkey"]["error_kind"] == "auth"


async def test_jump_host_from_the_inventory(fleet: Harness, sshd_factory: SshdFactory) -> None:
    admin = await fleet.role_headers(Role.ADMIN)
    bastion = sshd_factory.one(allow_tcp_forwarding=True)
    inner = sshd_factory.one()
    await add_host(fleet, admin, "bastion", bastion)
    await add_host(fleet, admin, "inner", inner, proxy_jump="bastion")
    ok = await fleet.client.post(
        "/api/v1/runs", json={"argv": ["hostname"], "targets": ["inner"]}, headers=admin
    )
    assert ok.json()["results"][0]["status"] == "ok", ok.text
    # Without the bastion the inner host is unreachable: the jump really is on the path.
    bastion.stop()
    failed = await fleet.client.post(
        "/api/v1/runs", json={"argv": ["hostname"], "targets": ["inner"]}, headers=admin
    )
    assert failed.json()["results"][0]["status"] == "error"


async def test_change_on_an_ssh_host_runs_once_after_approval(
    fleet: Harness, sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    admin = await fleet.role_headers(Role.ADMIN)
    server = sshd_factory.one()
    await add_host(fleet, admin, "remote", server)
    marker = tmp_path / "remote-marker"
    pending = await fleet.client.post(
        "/api/v1/runs",
        json={"argv": ["sh", "-c", f"echo once >> '{marker}'"], "targets": ["remote"]},
        headers=admin,
    )
    assert pending.status_code == 202
    approval_id = pending.json()["approval_id"]
    approved = await fleet.client.post(f"/api/v1/approvals/{approval_id}/approve", headers=admin)
    assert approved.json()["run"]["ok"] is True
    assert marker.read_text() == "once\n"
