"""LocalTransport against real subprocesses: no shell, clean env, limits, timeouts, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import tracemalloc
from pathlib import Path

import pytest

from tend.execution.transports import (
    BoundedCapture,
    CommandResult,
    CommandSpec,
    FailureKind,
    LocalTransport,
    OutputChunk,
    ResourceLimits,
    TransportError,
)


def live_group_members(pgid: int) -> list[int]:
    """Pids of non-zombie processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in {"Z", "X"}:
            members.append(int(entry.name))
    return members


async def wait_group_gone(pgid: int, limit: float = 3.0) -> None:
    deadline = time.monotonic() + limit
    while live_group_members(pgid):
        assert time.monotonic() < deadline, f"process group {pgid} still alive"
        await asyncio.sleep(0.05)


async def first_line_pid(stream: object) -> int:
    """Read chunks until the first stdout line (a pid printed with ``echo $$``)."""
    buffer = b""
    async for item in stream:  # type: ignore[attr-defined]
        assert isinstance(item, OutputChunk)
        buffer += item.data
        if b"\n" in buffer:
            return int(buffer.split(b"\n", 1)[0])
    raise AssertionError("no pid printed")


async def test_exit_code_stdout_and_stderr() -> None:
    result = await LocalTransport().run(CommandSpec(["sh", "-c", "echo out; echo err >&2; exit 7"]))
    assert result.exit_code == 7
    assert result.signal is None
    assert not result.ok
    assert result.stdout.data == b"out\n"
    assert result.stderr.data == b"err\n"
    assert result.stdout.sha256 == hashlib.sha256(b"out\n").hexdigest()
    ok = await LocalTransport().run(CommandSpec(["true"]))
    assert ok.ok
    assert ok.exit_code == 0


async def test_argv_arrives_literally_without_a_shell() -> None:
    args = ["a b", '"dq"', "'sq'", "$(id)", "`id`", "x;y", "*", "$HOME", "a|b", "&&", ""]
    result = await LocalTransport().run(CommandSpec(["printf", "%s\\n", *args]))
    assert result.stdout.data.decode().split("\n")[:-1] == args


async def test_environment_is_allowlisted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEND_SECRET", "hunter2")
    monkeypatch.setenv("LANG", "C.UTF-8")
    result = await LocalTransport().run(CommandSpec(["env"], env={"EXTRA_ONE": "v=1"}))
    env = dict(line.split("=", 1) for line in result.stdout.data.decode().splitlines())
    assert "TEND_SECRET" not in env
    assert "hunter2" not in result.stdout.data.decode()
    assert env["PATH"]
    assert env["LANG"] == "C.UTF-8"
    assert env["EXTRA_ONE"] == "v=1"


async def test_path_falls_back_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATH", raising=False)
    result = await LocalTransport().run(CommandSpec(["/usr/bin/env"]))
    assert b"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n" in (
        result.stdout.data
    )


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "", "A=B", "X\x00"])
async def test_bad_env_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="environment"):
        await LocalTransport().run(CommandSpec(["true"], env={name: "x"}))


async def test_bad_argv_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        await LocalTransport().run(CommandSpec([]))
    with pytest.raises(ValueError, match="NUL"):
        await LocalTransport().run(CommandSpec(["echo", "a\x00b"]))
    with pytest.raises(TypeError):
        await LocalTransport().run(CommandSpec("echo hi"))


async def test_cwd_and_stdin(tmp_path: Path) -> None:
    result = await LocalTransport().run(CommandSpec(["pwd"], cwd=str(tmp_path)))
    assert result.stdout.data.decode().strip() == str(tmp_path)
    payload = bytes(range(256)) * 1000
    echoed = await LocalTransport().run(CommandSpec(["cat"], stdin=payload))
    assert echoed.stdout.data == payload
    # Without stdin the command reads EOF at once instead of hanging.
    empty = await LocalTransport().run(CommandSpec(["cat"], timeout=5))
    assert empty.ok
    assert empty.stdout.total_bytes == 0


async def test_spawn_failures(tmp_path: Path) -> None:
    with pytest.raises(TransportError) as missing:
        await LocalTransport().run(CommandSpec(["/nonexistent/tend-no-such-binary"]))
    assert missing.value.kind is FailureKind.SPAWN
    assert "not found" in missing.value.message
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(TransportError) as denied:
        await LocalTransport().run(CommandSpec([str(script)]))
    assert denied.value.kind is FailureKind.SPAWN
    assert "permission denied" in denied.value.message
    with pytest.raises(TransportError) as bad_cwd:
        await LocalTransport().run(CommandSpec(["true"], cwd=str(tmp_path / "missing")))
    assert bad_cwd.value.kind is FailureKind.SPAWN
    assert "working directory" in bad_cwd.value.message


async def test_timeout_kills_the_whole_process_group() -> None:
    transport = LocalTransport(kill_grace=1.0)
    spec = CommandSpec(["sh", "-c", "sleep 30 & echo $$; sleep 30"], timeout=0.5)
    started = time.monotonic()
    stream = transport.stream(spec)
    pgid = await first_line_pid(stream)
    assert len(live_group_members(pgid)) >= 2  # sh, sleep and the background sleep
    result = None
    async for item in stream:
        if isinstance(item, CommandResult):
            result = item
    elapsed = time.monotonic() - started
    assert result is not None
    assert result.timed_out
    assert result.exit_code is None
    assert result.signal == "SIGTERM"
    assert elapsed < 0.5 + 1.0 + 1.0
    await wait_group_gone(pgid, 1.0)


async def test_sigkill_when_sigterm_is_ignored() -> None:
    transport = LocalTransport(kill_grace=0.5)
    spec = CommandSpec(["sh", "-c", "trap '' TERM; echo $$; sleep 30"], timeout=0.5)
    started = time.monotonic()
    stream = transport.stream(spec)
    pgid = await first_line_pid(stream)
    results = [item async for item in stream if isinstance(item, CommandResult)]
    elapsed = time.monotonic() - started
    assert results[0].timed_out
    assert results[0].signal == "SIGKILL"
    assert 0.9 <= elapsed < 0.5 + 0.5 + 1.0
    await wait_group_gone(pgid, 1.0)


async def test_output_flood_is_capped_with_flat_memory() -> None:
    size = 50 * 1024 * 1024
    cap = 64 * 1024
    tracemalloc.start()
    try:
        result = await LocalTransport().run(
            CommandSpec(["head", "-c", str(size), "/dev/zero"], output_cap=cap, timeout=30)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok
    assert result.stdout.truncated
    assert result.stdout.total_bytes == size
    assert result.stdout.data == b"\x00" * cap
    digest = hashlib.sha256()
    block = b"\x00" * (1024 * 1024)
    for _ in range(50):
        digest.update(block)
    assert result.stdout.sha256 == digest.hexdigest()
    assert peak < 4 * 1024 * 1024, f"peak traced memory {peak} bytes"


async def test_cpu_limit_kills_a_busy_loop() -> None:
    transport = LocalTransport(limits=ResourceLimits(cpu_seconds=1))
    result = await transport.run(CommandSpec(["sh", "-c", "while :; do :; done"], timeout=15))
    assert not result.timed_out
    assert result.signal in {"SIGXCPU", "SIGKILL"}


async def test_file_size_limit_applies(tmp_path: Path) -> None:
    target = tmp_path / "big"
    transport = LocalTransport(limits=ResourceLimits(file_size_bytes=4096))
    result = await transport.run(
        CommandSpec(["dd", "if=/dev/zero", f"of={target}", "bs=1024", "count=64"], timeout=10)
    )
    assert not result.ok
    assert result.signal == "SIGXFSZ" or result.exit_code not in {0, None}
    assert target.stat().st_size <= 4096


async def test_stopping_early_kills_the_process() -> None:
    stream = LocalTransport().stream(CommandSpec(["sh", "-c", "echo $$; sleep 30"], timeout=60))
    pgid = await first_line_pid(stream)
    assert live_group_members(pgid)
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_group_gone(pgid, 2.0)


async def test_breaking_out_of_the_loop_kills_the_process() -> None:
    pgid = 0
    async for item in LocalTransport().stream(
        CommandSpec(["sh", "-c", "echo $$; sleep 30"], timeout=60)
    ):
        assert isinstance(item, OutputChunk)
        pgid = int(item.data.split(b"\n")[0])
        break
    # The abandoned generator is finalized by the event loop, which kills the group.
    await wait_group_gone(pgid, 3.0)


async def test_cancelling_the_task_kills_the_process() -> None:
    pids: asyncio.Queue[int] = asyncio.Queue()

    async def consume() -> None:
        async for item in LocalTransport().stream(
            CommandSpec(["sh", "-c", "echo $$; sleep 30 & sleep 30"], timeout=60)
        ):
            if isinstance(item, OutputChunk):
                pids.put_nowait(int(item.data.split(b"\n")[0]))

    task = asyncio.create_task(consume())
    pgid = await asyncio.wait_for(pids.get(), 5)
    assert live_group_members(pgid)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await wait_group_gone(pgid, 1.0)


async def test_chunks_stream_before_the_process_ends() -> None:
    started = time.monotonic()
    arrivals: list[tuple[float, OutputChunk | CommandResult]] = []
    async for item in LocalTransport().stream(
        CommandSpec(["sh", "-c", "echo a; sleep 1; echo b"], timeout=10)
    ):
        arrivals.append((time.monotonic() - started, item))
    first_at, first = arrivals[0]
    last_at, last = arrivals[-1]
    assert isinstance(first, OutputChunk)
    assert first.data == b"a\n"
    assert isinstance(last, CommandResult)
    assert last.stdout.data == b"a\nb\n"
    assert last_at - first_at >= 0.7  # "a" came a second before the end


async def test_background_child_holding_the_pipes_does_not_hang() -> None:
    started = time.monotonic()
    result = await LocalTransport(drain_timeout=0.3).run(
        CommandSpec(["sh", "-c", "sleep 30 & echo started"], timeout=20)
    )
    assert result.ok
    assert not result.timed_out
    assert result.stdout.data == b"started\n"
    assert time.monotonic() - started < 2.0


async def test_stderr_is_capped_independently() -> None:
    result = await LocalTransport().run(
        CommandSpec(["sh", "-c", "head -c 5000 /dev/zero >&2; echo hi"], output_cap=100)
    )
    assert result.stderr.truncated
    assert result.stderr.total_bytes == 5000
    assert len(result.stderr.data) == 100
    assert result.stdout.data == b"hi\n"
    assert not result.stdout.truncated


def test_bounded_capture() -> None:
    capture = BoundedCapture(5)
    for piece in (b"abc", b"defg", b"", b"hij"):
        capture.feed(piece)
    summary = capture.summary()
    assert summary.data == b"abcde"
    assert summary.total_bytes == 10
    assert summary.truncated
    assert summary.sha256 == hashlib.sha256(b"abcdefghij").hexdigest()
    exact = BoundedCapture(3)
    exact.feed(b"abc")
    assert not exact.summary().truncated
    with pytest.raises(ValueError, match="negative"):
        BoundedCapture(-1)
