"""SshPool against real sshd: sharing, parallelism, bounds, idle expiry, reconnect, close."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tend.execution.transports import (
    CommandSpec,
    FailureKind,
    SshPool,
    SshTarget,
    TransportError,
)
from tests.execution.sshd import SshdFactory, descendants, next_address


@pytest.fixture
def black_hole() -> Iterator[tuple[str, int]]:
    """A loopback port whose kernel completes the TCP handshake but nobody ever answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((next_address(), 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[0], sock.getsockname()[1]
    finally:
        sock.close()


async def test_concurrent_runs_on_one_host_share_one_connection(
    sshd_factory: SshdFactory,
) -> None:
    server = sshd_factory.one()
    async with SshPool() as pool:
        transport = pool.transport(server.target())
        results = await asyncio.gather(
            *(transport.run(CommandSpec(["echo", str(i)])) for i in range(20))
        )
        assert [r.stdout.data for r in results] == [f"{i}\n".encode() for i in range(20)]
        stats = pool.stats()
        assert stats.connects == 1
        assert stats.open_connections == 1
        assert stats.active_channels == 0


async def test_hosts_connect_in_parallel_and_a_hanging_host_delays_only_itself(
    sshd_factory: SshdFactory, black_hole: tuple[str, int]
) -> None:
    servers = sshd_factory.start(3)
    hang_address, hang_port = black_hole
    async with SshPool() as pool:
        hanging = servers[0].target(
            name="hanging", address=hang_address, port=hang_port, connect_timeout=4.0
        )
        started = time.monotonic()
        finished: dict[str, float] = {}

        async def run(name: str, target: SshTarget) -> None:
            try:
                await pool.transport(target).run(CommandSpec(["true"]))
            finally:
                finished[name] = time.monotonic() - started

        jobs = [asyncio.ensure_future(run("hanging", hanging))]
        # The same hanging host asked twice at once still means one connect attempt.
        jobs.append(asyncio.ensure_future(run("hanging2", hanging)))
        for i, server in enumerate(servers):
            jobs.append(asyncio.ensure_future(run(f"ok{i}", server.target())))
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)

        for outcome in outcomes[:2]:
            assert isinstance(outcome, TransportError)
            assert outcome.kind is FailureKind.TIMEOUT
            assert f"{hang_address}:{hang_port}" in outcome.message
        assert all(outcome is None for outcome in outcomes[2:])
        # The good hosts finish on their own time, long before the hanging one gives up.
        for i in range(len(servers)):
            assert finished[f"ok{i}"] < 3.0, finished
        assert 3.9 <= finished["hanging"] < 6.5, finished
        assert abs(finished["hanging"] - finished["hanging2"]) < 0.5
        assert pool.stats().connects == 3


async def test_idle_connections_expire(sshd_factory: SshdFactory) -> None:
    server = sshd_factory.one()
    async with SshPool(idle_timeout=0.3) as pool:
        transport = pool.transport(server.target())
        assert (await transport.run(CommandSpec(["true"]))).ok
        assert pool.stats().open_connections == 1
        deadline = time.monotonic() + 3
        while pool.stats().open_connections:
            assert time.monotonic() < deadline, "idle connection was not closed"
            await asyncio.sleep(0.05)
        assert (await transport.run(CommandSpec(["true"]))).ok
        assert pool.stats().connects == 2


async def test_dropped_connection_is_reopened_once(sshd_factory: SshdFactory) -> None:
    server = sshd_factory.one()
    async with SshPool() as pool:
        transport = pool.transport(server.target())
        assert (await transport.run(CommandSpec(["true"]))).ok
        # Kill the server side of the connection; the pool notices only when it uses it.
        server.drop_connections()
        result = await transport.run(CommandSpec(["echo", "again"]))
        assert result.stdout.data == b"again\n"
        assert pool.stats().connects == 2
        # Restarting the whole server works the same way.
        server.restart()
        assert (await transport.run(CommandSpec(["true"]))).ok
        assert pool.stats().connects == 3


async def test_a_started_command_is_never_retried(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    server = sshd_factory.one()
    counter = tmp_path / "runs"
    async with SshPool() as pool:
        transport = pool.transport(server.target())
        spec = CommandSpec(["sh", "-c", f"echo run >> {counter}; echo started; sleep 20"])
        stream = transport.stream(spec)
        first = await anext(stream)
        assert getattr(first, "data", b"") == b"started\n"
        server.drop_connections()
        with pytest.raises(TransportError) as info:
            async for _ in stream:
                pass
        assert info.value.kind is FailureKind.CONNECTION_LOST
        assert counter.read_text() == "run\n"
        assert pool.stats().reconnects == 0


async def test_channels_per_host_are_bounded(sshd_factory: SshdFactory) -> None:
    server = sshd_factory.one()
    async with SshPool(max_channels_per_host=2) as pool:
        transport = pool.transport(server.target())
        assert (await transport.run(CommandSpec(["true"]))).ok  # connect first
        peak = 0

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, pool.stats().active_channels)
                await asyncio.sleep(0.01)

        sampler = asyncio.ensure_future(sample())
        started = time.monotonic()
        try:
            await asyncio.gather(*(transport.run(CommandSpec(["sleep", "0.4"])) for _ in range(6)))
        finally:
            sampler.cancel()
        elapsed = time.monotonic() - started
        assert peak == 2
        assert elapsed >= 1.15  # at least three waves of two


async def test_max_connections_evicts_idle_connections(sshd_factory: SshdFactory) -> None:
    first, second = sshd_factory.start(2)
    async with SshPool(max_connections=1) as pool:
        assert (await pool.transport(first.target()).run(CommandSpec(["true"]))).ok
        assert (await pool.transport(second.target()).run(CommandSpec(["true"]))).ok
        stats = pool.stats()
        assert stats.connects == 2
        assert stats.open_connections == 1


async def test_close_leaves_no_connections(sshd_factory: SshdFactory) -> None:
    servers = sshd_factory.start(2)
    pool = SshPool()
    for server in servers:
        assert (await pool.transport(server.target()).run(CommandSpec(["true"]))).ok
    assert pool.stats().open_connections == 2
    await pool.close()
    assert pool.stats().open_connections == 0
    # The servers' per-connection processes go away too.
    deadline = time.monotonic() + 3
    for server in servers:
        assert server.proc is not None
        while descendants(server.proc.pid):
            assert time.monotonic() < deadline, "server still has connections"
            await asyncio.sleep(0.05)
    with pytest.raises(TransportError, match="closed"):
        await pool.transport(servers[0].target()).run(CommandSpec(["true"]))
