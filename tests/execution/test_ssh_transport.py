"""SshTransport against real OpenSSH servers on loopback (no mocked SSH)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tend.execution.transports import (
    CommandResult,
    CommandSpec,
    FailureKind,
    OutputChunk,
    SshPool,
    SshTarget,
    SshTransport,
    TransportError,
)
from tests.execution.sshd import SshdFactory, free_port, generate_key, next_address


@pytest.fixture
async def pool() -> AsyncIterator[SshPool]:
    async with SshPool() as ssh_pool:
        yield ssh_pool


async def fails(transport: SshTransport, spec: CommandSpec | None = None) -> TransportError:
    with pytest.raises(TransportError) as info:
        await transport.run(spec or CommandSpec(["true"]))
    return info.value


async def test_exit_codes_output_and_signals(sshd_factory: SshdFactory, pool: SshPool) -> None:
    server = sshd_factory.one()
    transport = pool.transport(server.target())
    result = await transport.run(CommandSpec(["sh", "-c", "echo out; echo err >&2; exit 3"]))
    assert result.exit_code == 3
    assert result.signal is None
    assert result.stdout.data == b"out\n"
    assert result.stderr.data == b"err\n"
    assert not result.timed_out
    ok = await transport.run(CommandSpec(["id", "-un"]))
    assert ok.ok
    assert ok.stdout.data.decode().strip() == server.user
    killed = await transport.run(CommandSpec(["sh", "-c", "kill -TERM $$"]))
    assert killed.exit_code is None
    assert killed.signal == "SIGTERM"


async def test_stdin_is_sent_then_eof(sshd_factory: SshdFactory, pool: SshPool) -> None:
    transport = pool.transport(sshd_factory.one().target())
    payload = bytes(range(256)) * 4096  # 1 MiB, more than one channel window
    result = await transport.run(CommandSpec(["sha256sum"], stdin=payload))
    assert result.stdout.data.split()[0].decode() == hashlib.sha256(payload).hexdigest()
    empty = await transport.run(CommandSpec(["cat"], timeout=10))
    assert empty.ok
    assert empty.stdout.total_bytes == 0


async def test_output_cap_and_streaming(sshd_factory: SshdFactory, pool: SshPool) -> None:
    transport = pool.transport(sshd_factory.one().target())
    size = 5 * 1024 * 1024
    result = await transport.run(
        CommandSpec(["head", "-c", str(size), "/dev/zero"], output_cap=1000, timeout=30)
    )
    assert result.stdout.truncated
    assert result.stdout.total_bytes == size
    assert result.stdout.data == b"\x00" * 1000
    assert result.stdout.sha256 == hashlib.sha256(b"\x00" * size).hexdigest()

    started = time.monotonic()
    arrivals: list[tuple[float, OutputChunk | CommandResult]] = []
    async for item in transport.stream(CommandSpec(["sh", "-c", "echo a; sleep 1; echo b"])):
        arrivals.append((time.monotonic() - started, item))
    assert isinstance(arrivals[0][1], OutputChunk)
    assert arrivals[0][1].data == b"a\n"
    assert isinstance(arrivals[-1][1], CommandResult)
    assert arrivals[-1][0] - arrivals[0][0] >= 0.7  # "a" came a second before the end


async def test_cwd_and_env_over_ssh(sshd_factory: SshdFactory, pool: SshPool) -> None:
    transport = pool.transport(sshd_factory.one().target())
    result = await transport.run(
        CommandSpec(["sh", "-c", 'pwd; echo "$GREETING"'], cwd="/tmp", env={"GREETING": "a b"})
    )
    assert result.stdout.data == b"/tmp\na b\n"


def self_excluding(marker: str) -> str:
    """A pgrep pattern matching ``marker`` but not itself (nor the remote timeout wrapper)."""
    return f"[{marker[0]}]{marker[1:]}"


async def test_timeout_stops_the_remote_command(sshd_factory: SshdFactory) -> None:
    server = sshd_factory.one()
    marker = f"tend-timeout-{uuid.uuid4().hex}"
    async with SshPool() as pool:
        transport = SshTransport(pool, server.target(), kill_grace=0.5, drain_timeout=0.5)
        started = time.monotonic()
        result = await transport.run(
            CommandSpec(["python3", "-c", "import time; time.sleep(30)", marker], timeout=1.0)
        )
        elapsed = time.monotonic() - started
        assert result.timed_out
        assert result.exit_code is None
        assert elapsed < 1.0 + 0.5 + 0.5 + 1.5
        # sshd refuses "signal" requests for root sessions, so for root the remote coreutils
        # `timeout` wrapper (deadline = timeout + grace + 1 s) is what stops the process.
        deadline = time.monotonic() + 8
        while True:
            check = await transport.run(CommandSpec(["pgrep", "-f", self_excluding(marker)]))
            if check.exit_code == 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert check.exit_code == 1, f"remote process survived: {check.stdout.data!r}"
        if server.user != "root":
            assert result.signal in {"SIGTERM", "SIGKILL"}
        # The connection is still usable afterwards.
        assert (await transport.run(CommandSpec(["true"]))).ok


async def test_unknown_host_key_is_refused(sshd_factory: SshdFactory, pool: SshPool) -> None:
    server = sshd_factory.one()
    error = await fails(pool.transport(server.target(known_host_keys=())))
    assert error.kind is FailureKind.HOST_KEY_UNKNOWN
    assert f"host key of {server.name} is not known" in error.message


async def test_trust_on_first_use_records_the_key_once(sshd_factory: SshdFactory) -> None:
    server = sshd_factory.one()
    recorded: list[tuple[SshTarget, str]] = []

    async def record(target: SshTarget, public_key: str) -> None:
        recorded.append((target, public_key))

    target = server.target(known_host_keys=(), trust_on_first_use=True)
    async with SshPool(on_new_host_key=record) as pool:
        transport = pool.transport(target)
        assert (await transport.run(CommandSpec(["true"]))).ok
        assert (await transport.run(CommandSpec(["true"]))).ok
        # A reconnect verifies against the learned key instead of trusting again.
        server.drop_connections()
        assert (await transport.run(CommandSpec(["true"]))).ok
        assert pool.stats().connects == 2
        assert recorded == [(target, server.host_key_line)]
        # ... and a changed key after first use is refused, not trusted again.
        server.restart_with_new_host_key()
        error = await fails(transport)
        assert error.kind is FailureKind.HOST_KEY_CHANGED
    assert len(recorded) == 1


async def test_known_hosts_file(sshd_factory: SshdFactory, pool: SshPool, tmp_path: Path) -> None:
    server = sshd_factory.one()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{server.address}]:{server.port} {server.host_key_line}\n")
    target = server.target(known_host_keys=(), known_hosts_file=known_hosts)
    assert (await pool.transport(target).run(CommandSpec(["true"]))).ok

    other = generate_key(tmp_path / "other_host_key")
    wrong = tmp_path / "known_hosts_wrong"
    wrong.write_text(f"[{server.address}]:{server.port} {other}\n")
    error = await fails(
        pool.transport(server.target(name="b", known_host_keys=(), known_hosts_file=wrong))
    )
    assert error.kind is FailureKind.HOST_KEY_CHANGED


async def test_changed_host_key_is_refused_and_logged(
    sshd_factory: SshdFactory, pool: SshPool, caplog: pytest.LogCaptureFixture
) -> None:
    server = sshd_factory.one()
    transport = pool.transport(server.target())
    assert (await transport.run(CommandSpec(["true"]))).ok
    server.restart_with_new_host_key()
    with caplog.at_level(logging.ERROR, logger="tend.execution.ssh"):
        error = await fails(transport)
    assert error.kind is FailureKind.HOST_KEY_CHANGED
    assert f"HOST KEY OF {server.name} HAS CHANGED" in error.message
    assert "man-in-the-middle" in error.message
    assert any(
        record.levelno == logging.ERROR and "HAS CHANGED" in record.getMessage()
        for record in caplog.records
        if record.name == "tend.execution.ssh"
    )


async def test_connection_failures_are_classified(
    sshd_factory: SshdFactory, pool: SshPool, tmp_path: Path
) -> None:
    server = sshd_factory.one()
    address = next_address()
    port = free_port(address)
    refused = await fails(pool.transport(server.target(name="r", address=address, port=port)))
    assert refused.kind is FailureKind.REFUSED
    assert f"{address}:{port}" in refused.message

    dns = await fails(pool.transport(server.target(name="d", address="nonexistent.invalid")))
    assert dns.kind is FailureKind.DNS
    assert "nonexistent.invalid" in dns.message

    generate_key(tmp_path / "stranger")
    auth = await fails(pool.transport(server.target(name="a", key_files=(tmp_path / "stranger",))))
    assert auth.kind is FailureKind.AUTH
    assert f"{server.address}:{server.port}" in auth.message

    no_key = await fails(pool.transport(server.target(name="m", key_files=(tmp_path / "nope",))))
    assert no_key.kind is FailureKind.AUTH


async def test_jump_host(sshd_factory: SshdFactory, tmp_path: Path) -> None:
    jump, inner = sshd_factory.start(2, allow_tcp_forwarding=True)
    target = inner.target(jump=(jump.target(),))
    async with SshPool() as pool:
        result = await pool.transport(target).run(CommandSpec(["echo", "through"]))
        assert result.stdout.data == b"through\n"
        # Nothing listens behind the jump host here: the jump host reports it.
        port = free_port(inner.address)
        error = await fails(
            pool.transport(inner.target(name="x", port=port, jump=(jump.target(),)))
        )
        assert error.kind is FailureKind.REFUSED
    # With the jump host down, the inner host is not reachable that way (the hop is used).
    jump.stop()
    async with SshPool() as pool:
        down = await fails(pool.transport(target))
        assert down.kind is FailureKind.REFUSED
        assert f"jump host {jump.name} (on the way to {inner.name})" in down.message
        assert (await pool.transport(inner.target()).run(CommandSpec(["true"]))).ok


async def test_bad_argv_is_refused_before_connecting(pool: SshPool) -> None:
    transport = pool.transport(SshTarget(name="n", address="nonexistent.invalid"))
    for bad in (["echo", "a\nb"], ["echo", "a\x00b"], []):
        with pytest.raises(ValueError, match=r"NUL|empty"):
            await transport.run(CommandSpec(bad))
    assert pool.stats().connects == 0


async def test_cancelling_a_remote_command_releases_its_channel(
    sshd_factory: SshdFactory, pool: SshPool
) -> None:
    server = sshd_factory.one()
    transport = pool.transport(server.target())
    marker = f"tend-cancel-{uuid.uuid4().hex}"
    started = asyncio.Event()

    async def consume() -> None:
        spec = CommandSpec(["sh", "-c", f"echo go; exec sleep 30 # {marker}"], timeout=60)
        async for _ in transport.stream(spec):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 10)
    assert pool.stats().active_channels == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.stats().active_channels == 0
    assert (await transport.run(CommandSpec(["true"]))).ok
    if server.user != "root":  # see test_timeout_stops_the_remote_command
        check = await transport.run(CommandSpec(["pgrep", "-f", self_excluding(marker)]))
        assert check.exit_code == 1
