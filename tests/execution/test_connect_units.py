"""Dense logic tested directly: SSH target building, jump hops, fan-out, audit head checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update

from tend.auth.models import Role
from tend.execution.audit import AuditEntry
from tend.execution.connect import Transports, _split_hop
from tend.execution.fanout import fan_out
from tend.execution.models import AuditHead
from tend.execution.targets import HostSnapshot
from tend.execution.transports.local import LocalTransport
from tend.execution.transports.pool import SshPool
from tests.conftest import Harness, make_settings


def snapshot(name: str, **fields) -> HostSnapshot:
    values = {
        "name": name,
        "address": f"{name}.example.com",
        "port": 22,
        "user": None,
        "transport": "ssh",
        "tags": (),
        "key_file": None,
        "proxy_jump": None,
        "trust_on_first_use": False,
        "host_key": None,
    }
    values.update(fields)
    return HostSnapshot(**values)


@pytest.mark.parametrize(
    ("hop", "expected"),
    [
        ("bastion", (None, "bastion", None)),
        ("ops@bastion", ("ops", "bastion", None)),
        ("ops@bastion:2222", ("ops", "bastion", 2222)),
        ("[2001:db8::1]:2200", (None, "2001:db8::1", 2200)),
        ("root@[::1]", ("root", "::1", None)),
    ],
)
def test_split_hop(hop: str, expected: tuple) -> None:
    assert _split_hop(hop) == expected


def test_targets_resolve_jumps_through_the_inventory(tmp_path: Path) -> None:
    key = tmp_path / "id"
    settings = make_settings(tmp_path, ssh_key_file=key, ssh_known_hosts_file=tmp_path / "kh")
    transports = Transports(settings, SshPool(), LocalTransport())
    bastion = snapshot(
        "bastion",
        address="10.0.0.1",
        port=2200,
        user="jump",
        host_key="ssh-ed25519 AAAA",
        key_file="/keys/bastion",
    )
    web = snapshot(
        "web",
        proxy_jump="ops@bastion:2222,edge.example.com:22",
        user="deploy",
        trust_on_first_use=True,
    )
    target = transports.ssh_target(web, {"bastion": bastion})
    first, second = target.jump
    assert (first.address, first.port, first.user) == ("10.0.0.1", 2222, "ops")
    assert first.known_host_keys == ("ssh-ed25519 AAAA",)
    assert first.key_files == (Path("/keys/bastion"),)
    assert (second.address, second.port, second.user) == ("edge.example.com", 22, None)
    assert second.key_files == (key,)
    assert target.user == "deploy"
    assert target.trust_on_first_use is True
    assert target.known_hosts_file == tmp_path / "kh"
    pinned = transports.ssh_target(
        snapshot("p", host_key="ssh-ed25519 BBBB", trust_on_first_use=True)
    )
    assert pinned.trust_on_first_use is False, "a pinned key is never replaced on first use"
    assert transports.for_host(snapshot("l", transport="local")) is transports.local


def test_jump_chains_are_bounded(tmp_path: Path) -> None:
    transports = Transports(make_settings(tmp_path), SshPool(), LocalTransport())
    hops = ",".join(f"hop{i}" for i in range(9))
    with pytest.raises(ValueError, match="jump hosts"):
        transports.ssh_target(snapshot("deep", proxy_jump=hops))


def test_known_hosts_defaults_to_the_users_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    transports = Transports(make_settings(tmp_path), SshPool(), LocalTransport())
    assert transports.ssh_target(snapshot("a")).known_hosts_file is None
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text("")
    assert transports.ssh_target(snapshot("a")).known_hosts_file == tmp_path / ".ssh/known_hosts"


async def test_fan_out_yields_in_completion_order_and_bounds_concurrency() -> None:
    running = 0
    peak = 0

    async def work(delay: float) -> float:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(delay)
        running -= 1
        return delay

    results = [r async for r in fan_out([0.3, 0.1, 0.2, 0.05], work, concurrency=2)]
    assert sorted(results) == [0.05, 0.1, 0.2, 0.3]
    assert results[0] == 0.1
    assert peak == 2


async def test_fan_out_surfaces_a_bug_instead_of_hanging() -> None:
    async def work(item: int) -> int:
        if item == 2:
            raise RuntimeError("bug in work")
        await asyncio.sleep(0.01 * item)
        return item

    with pytest.raises(RuntimeError, match="bug in work"):
        async with asyncio.timeout(5):
            _ = [r async for r in fan_out([1, 2, 3], work, concurrency=3)]


async def test_tampered_or_missing_head_is_detected(harness: Harness) -> None:
    log = harness.context.execution.audit
    await log.append_many([AuditEntry(event="e", actor="a") for _ in range(3)])
    async with harness.context.database.session() as session:
        await session.execute(update(AuditHead).values(count=99))
    admin = await harness.role_headers(Role.ADMIN)
    result = (await harness.client.get("/api/v1/audit/verify", headers=admin)).json()
    assert result["ok"] is False
    assert "head was modified" in result["reason"]
    async with harness.context.database.session() as session:
        head = await session.get(AuditHead, 1)
        assert head is not None
        await session.delete(head)
    result = (await harness.client.get("/api/v1/audit/verify", headers=admin)).json()
    assert result["ok"] is False
    assert "head is missing" in result["reason"]


async def test_audit_extra_fields_and_paging(harness: Harness) -> None:
    log = harness.context.execution.audit
    ids = await log.append_many(
        [AuditEntry(event="e", actor="a", detail="d", extra={"k": i}) for i in range(5)]
    )
    page = await log.query(before_id=ids[3], limit=2)
    assert [r.id for r in page] == [ids[2], ids[1]]
    assert page[0].detail == 'd {"k": 2}'
    assert (await log.append_many([])) == []
    assert (await log.verify()).ok
