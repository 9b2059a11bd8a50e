"""Agentless collection through a real sshd on loopback, compared with the local collector."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tend.auth.models import Role
from tend.execution.policy import Risk, evaluate, parse_rules
from tend.execution.probe import ProbeRefused
from tend.execution.targets import HostSnapshot
from tend.monitoring.collectors.local import LocalCollector
from tend.monitoring.collectors.probe import PROBE_ARGV, SCRIPT
from tend.monitoring.collectors.remote import RemoteCollector
from tend.monitoring.registry import Snapshot
from tests.conftest import Harness, make_settings, start_harness
from tests.execution.conftest import sshd_available, sshd_factory  # noqa: F401 - fixtures
from tests.execution.sshd import Sshd, SshdFactory, free_port, next_address
from tests.monitoring.test_collectors_local import LOCAL

CONNECT_TIMEOUT = 3.0


@contextlib.asynccontextmanager
async def serving(
    sshd_factory: SshdFactory,  # noqa: F811
    tmp_path: Path,
    database: dict[str, Any],
) -> AsyncIterator[Harness]:
    """A tend server whose SSH key is the test sshd client key."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    settings = make_settings(
        tmp_path,
        **database,
        ssh_key_file=sshd_factory.client_key_path,
        ssh_known_hosts_file=known_hosts,
        ssh_connect_timeout=CONNECT_TIMEOUT,
    )
    async with start_harness(settings) as harness:
        yield harness


@pytest.fixture
async def server(sshd_factory: SshdFactory, tmp_path: Path) -> AsyncIterator[Harness]:  # noqa: F811
    """A tend server on SQLite (collection does not depend on the database)."""
    database = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"}
    async with serving(sshd_factory, tmp_path, database) as harness:
        yield harness


@pytest.fixture
async def any_backend_server(
    sshd_factory: SshdFactory,  # noqa: F811
    tmp_path: Path,
    database_target: dict[str, Any],
) -> AsyncIterator[Harness]:
    """A tend server on each database backend (the audit entries are written there)."""
    async with serving(sshd_factory, tmp_path, database_target) as harness:
        yield harness


def host_of(sshd: Sshd, name: str = "box", tags: tuple[str, ...] = ()) -> HostSnapshot:
    return HostSnapshot(
        name=name,
        address=sshd.address,
        port=sshd.port,
        user=sshd.user,
        transport="ssh",
        tags=tags,
        key_file=None,
        proxy_jump=None,
        trust_on_first_use=False,
        host_key=sshd.host_key_line,
    )


def mounts(snapshot: Snapshot) -> dict[str, float]:
    return {
        dict(s.labels)["mount"]: s.value
        for s in snapshot.samples
        if s.metric == "filesystem_size_bytes"
    }


def test_the_probe_is_judged_read_by_the_default_policy() -> None:
    decision = evaluate(PROBE_ARGV, role=Role.VIEWER.value, host_tags=("prod",))
    assert decision.risk is Risk.READ, decision.reason
    # The judge looks inside the script: one write in it and it is no longer a read.
    tampered = evaluate(["sh", "-c", SCRIPT + "; rm -f /etc/motd"], role=Role.VIEWER.value)
    assert tampered.risk is not Risk.READ


async def test_remote_collection_matches_what_the_local_collector_sees(
    server: Harness,
    sshd_factory: SshdFactory,  # noqa: F811
) -> None:
    host = host_of(sshd_factory.one())
    remote = RemoteCollector(server.context.execution)

    first = await remote.collect(host)
    local = await LocalCollector().collect(LOCAL)
    await asyncio.sleep(1.0)
    second = await remote.collect(host)

    for snapshot in (first, second):
        assert snapshot.error is None, snapshot.error
        assert snapshot.host == "box"
        assert snapshot.value("host_up") == 1
        assert snapshot.value("memory_total_bytes") == local.value("memory_total_bytes")
        assert snapshot.value("cpu_count") == local.value("cpu_count")
        assert snapshot.value("swap_total_bytes") == local.value("swap_total_bytes")
        assert (
            abs((snapshot.value("uptime_seconds") or 0) - (local.value("uptime_seconds") or 0)) < 30
        )
    remote_mounts, local_mounts = mounts(second), mounts(local)
    assert "/" in remote_mounts
    assert "/" in local_mounts
    for mount in remote_mounts.keys() & local_mounts.keys():
        assert remote_mounts[mount] == local_mounts[mount], mount
    assert abs((second.value("processes_total") or 0) - (local.value("processes_total") or 0)) < 50
    # Rates need two rounds: none on the first, all on the second.
    assert first.value("cpu_usage_percent") is None
    assert first.value("network_receive_bytes_per_second", interface="lo") is None
    assert 0 <= (second.value("cpu_usage_percent") or -1) <= 100
    assert (second.value("network_receive_bytes_per_second", interface="lo") or 0) > 0  # ssh
    assert {s.metric for s in local.samples} == {s.metric for s in second.samples}
    top = second.info["top_memory"]
    assert top
    assert all(entry["user"] != "?" for entry in top)


async def test_one_audit_entry_per_host_whatever_the_number_of_rounds(
    any_backend_server: Harness,
    sshd_factory: SshdFactory,  # noqa: F811
) -> None:
    server = any_backend_server
    a, b = sshd_factory.start(2)
    remote = RemoteCollector(server.context.execution)
    for _ in range(3):
        await asyncio.gather(remote.collect(host_of(a, "a")), remote.collect(host_of(b, "b")))

    records = await server.context.execution.audit.query(event="monitor_probe")
    assert sorted(r.host for r in records) == ["a", "b"]
    assert all(list(r.argv) == list(PROBE_ARGV) and r.risk == "read" for r in records)
    assert (await server.context.execution.audit.verify()).ok


async def test_an_unreachable_host_is_down_with_the_reason(
    server: Harness,
    sshd_factory: SshdFactory,  # noqa: F811
) -> None:
    sshd = sshd_factory.one()
    host = host_of(sshd)
    remote = RemoteCollector(server.context.execution)
    assert (await remote.collect(host)).value("host_up") == 1
    sshd.stop()
    down = await remote.collect(host)

    assert down.value("host_up") == 0
    assert down.error
    assert "box" in down.error
    assert "refused" in down.error
    assert down.value("memory_total_bytes") is None


async def test_a_policy_that_forbids_the_probe_is_refused_loudly(
    server: Harness,
    sshd_factory: SshdFactory,  # noqa: F811
) -> None:
    execution = server.context.execution
    execution.rules = parse_rules("rules:\n  - deny: [[grep, '...']]\n")
    with pytest.raises(ProbeRefused, match="forbidden"):
        RemoteCollector(execution)

    # A rule for some hosts only: those hosts are refused, the others are collected.
    execution.rules = parse_rules("rules:\n  - match: {tags: [sealed]}\n    deny: [[cat, '...']]\n")
    remote = RemoteCollector(execution)
    sshd = sshd_factory.one()
    sealed = await remote.collect(host_of(sshd, "sealed", ("sealed",)))
    open_ = await remote.collect(host_of(sshd, "open"))
    assert sealed.value("host_up") == 0
    assert sealed.error
    assert "forbidden" in sealed.error
    assert open_.value("host_up") == 1
    records = await execution.audit.query(event="monitor_probe")
    assert [r.host for r in records] == ["open"]


class LyingSshd(Sshd):
    """An sshd that answers every command with the same made-up, broken /proc text."""

    def write_config(self) -> Path:
        path = super().write_config()
        reply = self.workdir / "reply.txt"
        reply.write_text("@@tend:meminfo\nMemTotal: 2048 kB\n@@tend:stat\ncpu nan 1 2 3\n")
        with path.open("a") as config:
            config.write(f"ForceCommand cat {reply}\n")
        return path


async def test_a_host_answering_garbage_is_an_error_not_a_crash(
    server: Harness,
    sshd_factory: SshdFactory,  # noqa: F811
) -> None:
    workdir = sshd_factory.base / "liar"
    workdir.mkdir()
    (workdir / "authorized_keys").write_text(sshd_factory.client_key_line + "\n")
    address = next_address()
    liar = LyingSshd(
        workdir=workdir,
        address=address,
        port=free_port(address),
        user=sshd_factory.user,
        client_key_path=sshd_factory.client_key_path,
    )
    sshd_factory.servers.append(liar)  # stopped with the others
    liar.start()
    remote = RemoteCollector(server.context.execution)

    for _ in range(2):
        snapshot = await remote.collect(host_of(liar, "liar"))
        assert snapshot.error is not None
        assert "stat: not a number: 'nan'" in snapshot.error
        assert "output: cut short" in snapshot.error
        assert "loadavg: missing" in snapshot.error
        assert snapshot.value("memory_total_bytes") == 2048 * 1024
        assert snapshot.value("cpu_usage_percent") is None
        assert snapshot.value("host_up") == 1
