"""Cancelling or timing out an SSH command stops the remote process, even where sshd will not.

sshd refuses channel ``signal`` requests for root sessions (and these tests usually run as
root), so what stops the remote ``sleep`` here is tend's own kill channel. The sshd servers run
on this machine, so the remote processes are checked directly in /proc.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tend.auth.models import Role
from tend.execution.transports import CommandSpec, SshPool, SshTransport
from tend.execution.transports.remote_process import PidMarker, new_nonce, report_pid
from tests.conftest import Harness, make_settings, start_harness
from tests.execution.sshd import Sshd, SshdFactory

GONE_WITHIN = 5.0


def unique_duration() -> str:
    """A ``sleep`` argument no other process has: it names the remote process."""
    return f"300.{uuid.uuid4().int % 10**9:09d}"


def pids_running(needle: str) -> list[int]:
    """Live (non-zombie) processes whose command line has ``needle`` as one argument."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle.encode() in args and state != "Z":
            found.append(int(entry.name))
    return found


async def wait_running(needle: str, within: float = 10.0) -> list[int]:
    deadline = time.monotonic() + within
    while not (pids := pids_running(needle)):
        assert time.monotonic() < deadline, f"the remote command with {needle} never started"
        await asyncio.sleep(0.02)
    return pids


async def seconds_until_gone(needle: str, within: float = GONE_WITHIN) -> float:
    """Wait until no process has ``needle``; fail if one survives ``within`` seconds."""
    started = time.monotonic()
    while pids := pids_running(needle):
        assert time.monotonic() - started < within, f"remote processes {pids} survived"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def cancel(task: asyncio.Task[Any]) -> None:
    """Cancel a run and wait (a few seconds at most) until the cancel has gone through."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(GONE_WITHIN):  # a lost cancel fails here, not in 300 s
            await task


# ------------------------------------------------------------------ transport level


@pytest.mark.parametrize(
    ("remote_timeout", "cwd", "env"),
    [(False, None, {}), (True, None, {}), (True, "/tmp", {"TEND_MARK": "a b"})],
    ids=["plain", "remote-timeout", "remote-timeout-env-cwd"],
)
async def test_cancel_stops_a_long_remote_sleep(
    sshd_factory: SshdFactory, remote_timeout: bool, cwd: str | None, env: dict[str, str]
) -> None:
    server = sshd_factory.one()
    duration = unique_duration()
    async with SshPool(remote_timeout=remote_timeout) as pool:
        transport = pool.transport(server.target())
        spec = CommandSpec(
            ["sh", "-c", 'echo started; exec sleep "$1"', "sh", duration],
            timeout=600,
            cwd=cwd,
            env=env,
        )
        task = asyncio.create_task(transport.run(spec))
        pids = await wait_running(duration)  # sleep (and timeout)
        assert pool.stats().active_channels == 1
        await cancel(task)
        # The cancel waits for the remote kill: once it returns, the process is gone.
        assert not pids_running(duration), f"remote {pids} survived the cancel"
        assert pool.stats().active_channels == 0
        # The connection stays usable and the PID marker never reaches the output.
        after = await transport.run(CommandSpec(["sh", "-c", "echo out; echo err >&2; exit 4"]))
        assert (after.exit_code, after.stdout.data, after.stderr.data) == (4, b"out\n", b"err\n")
        assert pool.stats().connects == 1


async def test_a_command_ignoring_term_is_killed_after_the_grace(sshd_factory: SshdFactory) -> None:
    server = sshd_factory.one()
    duration = unique_duration()
    async with SshPool(remote_timeout=False) as pool:
        transport = SshTransport(pool, server.target(), kill_grace=0.5, remote_timeout=False)
        # An ignored signal stays ignored across exec: this sleep shrugs off TERM.
        spec = CommandSpec(["sh", "-c", 'trap "" TERM; exec sleep "$1"', "sh", duration])
        task = asyncio.create_task(transport.run(spec))
        await wait_running(duration)
        await cancel(task)
        await seconds_until_gone(duration)


async def test_timeout_stops_the_remote_command_without_a_remote_deadline(
    sshd_factory: SshdFactory,
) -> None:
    server = sshd_factory.one()
    duration = unique_duration()
    async with SshPool(remote_timeout=False) as pool:
        transport = SshTransport(
            pool, server.target(), kill_grace=0.5, drain_timeout=0.5, remote_timeout=False
        )
        result = await transport.run(
            CommandSpec(["sh", "-c", 'echo before; exec sleep "$1"', "sh", duration], timeout=1)
        )
        assert result.timed_out
        assert result.exit_code is None
        assert result.signal in {"SIGTERM", "SIGKILL"}
        assert result.stdout.data == b"before\n"
        assert result.stderr.total_bytes == 0
        await seconds_until_gone(duration)


async def test_children_in_the_process_group_are_stopped_too(sshd_factory: SshdFactory) -> None:
    server = sshd_factory.one()
    duration = unique_duration()
    async with SshPool(remote_timeout=False) as pool:
        transport = SshTransport(pool, server.target(), kill_grace=0.5, remote_timeout=False)
        # No exec: the shell waits for its child, both in the command's process group.
        spec = CommandSpec(["sh", "-c", 'sleep "$1"; echo never', "sh", duration], timeout=600)
        task = asyncio.create_task(transport.run(spec))
        await wait_running(duration)
        await cancel(task)
        await seconds_until_gone(duration)


# ------------------------------------------------------------------ the marker line

STDERR = st.binary(max_size=300)


@given(
    before=STDERR,
    after=STDERR,
    cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=6),
    pid=st.integers(min_value=2, max_value=2**22),
)
@settings(max_examples=300, deadline=None)
def test_marker_is_removed_from_any_chunking(
    before: bytes, after: bytes, cuts: list[int], pid: int
) -> None:
    """Whatever surrounds it and however it is split, only the marker line is removed."""
    nonce = new_nonce()
    stream = before + f"tend-pid:{nonce}:{pid}\n".encode() + after
    marker = PidMarker(nonce)
    passed = b""
    edges = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    for start, end in itertools.pairwise(edges):
        passed += marker.feed(stream[start:end])
    passed += marker.flush()
    assert marker.pid == pid
    assert passed == before + after


def test_stderr_without_a_marker_passes_through() -> None:
    marker = PidMarker(new_nonce())
    assert marker.feed(b"no marker here\n") == b""  # held back while it may still come
    assert marker.flush() == b"no marker here\n"
    assert marker.pid is None
    flood = PidMarker(new_nonce())
    assert flood.feed(b"x" * 5000) == b"x" * 5000  # a login script's flood is not held forever
    assert flood.feed(b"more") == b"more"
    # Another command's marker (another nonce) is ordinary output.
    other = PidMarker(new_nonce())
    line = f"tend-pid:{new_nonce()}:123\n".encode()
    assert other.feed(line) == b""
    assert other.flush() == line
    assert other.pid is None


def test_wrapper_only_prefixes_the_command() -> None:
    nonce = new_nonce()
    assert report_pid("ls -l", nonce) == f"printf '%s\\n' tend-pid:{nonce}:$$ >&2; exec ls -l"
    # A command line starting with "-" is not given to exec, which could take it as an option.
    assert report_pid("-c x", nonce).endswith(">&2; -c x")
    with pytest.raises(ValueError, match="alphanumeric"):
        report_pid("ls", "a;b")


# ------------------------------------------------------------------ through the API


@pytest.fixture
async def fleet(
    sshd_factory: SshdFactory, tmp_path: Path, database_target: dict[str, Any]
) -> AsyncIterator[Harness]:
    """A tend server whose SSH defaults point at the test sshd client key."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    settings = make_settings(
        tmp_path,
        **database_target,
        ssh_key_file=sshd_factory.client_key_path,
        ssh_known_hosts_file=known_hosts,
        ssh_connect_timeout=2.0,
    )
    async with start_harness(settings) as harness:
        yield harness


async def add_host(h: Harness, admin: dict[str, str], name: str, server: Sshd) -> None:
    body = {
        "name": name,
        "address": server.address,
        "port": server.port,
        "user": server.user,
        "host_key": server.host_key_line,
    }
    response = await h.client.post("/api/v1/hosts", json=body, headers=admin)
    assert response.status_code == 201, response.text


async def job_until(
    h: Harness, headers: dict[str, str], job_id: str, ready: Any, within: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        job: dict[str, Any] = (await h.client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if ready(job):
            return job
        assert time.monotonic() < deadline, f"job still {job['state']} ({job['progress']})"
        await asyncio.sleep(0.05)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event type, data) of each Server-Sent Event in ``text``."""
    found = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        found.append((fields["event"], json.loads(fields["data"])))
    return found


async def test_cancelling_a_job_stops_the_remote_sleep_and_records_finished_hosts(
    fleet: Harness, sshd_factory: SshdFactory
) -> None:
    admin = await fleet.role_headers(Role.ADMIN)
    operator = await fleet.role_headers(Role.OPERATOR)
    busy, down = sshd_factory.start(2)
    await add_host(fleet, admin, "busy", busy)
    await add_host(fleet, admin, "down", down)
    down.stop()  # this host finishes at once: its connection is refused
    duration = unique_duration()
    accepted = await fleet.client.post(
        "/api/v1/runs",
        json={"argv": ["sleep", duration], "targets": ["busy", "down"], "async": True},
        headers=operator,
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    await wait_running(duration)
    # One host of two has finished (refused) while the other still sleeps.
    running = await job_until(fleet, operator, job_id, lambda j: j["progress"] == 0.5)
    assert running["state"] == "running"

    response = await fleet.client.post(f"/api/v1/jobs/{job_id}/cancel", headers=operator)
    assert response.status_code == 200, response.text
    job = await job_until(fleet, operator, job_id, lambda j: j["state"] != "running")
    assert job["state"] == "cancelled", job
    # The job is settled only after the remote kill: the sleep is already gone.
    assert not pids_running(duration), "the remote sleep survived the cancelled job"

    result = job["result"]
    assert [r["host"] for r in result["results"]] == ["down"]
    assert result["results"][0]["error_kind"] == "refused"
    assert result["cancelled_hosts"] == ["busy"]
    assert result["not_started_hosts"] == []
    assert result["ok"] is False
    events = await fleet.client.get(f"/api/v1/jobs/{job_id}/events", headers=operator)
    seen = sse_events(events.text)
    assert sorted(d["host"] for kind, d in seen if kind == "host_started") == ["busy", "down"]
    assert [d["host"] for kind, d in seen if kind == "host"] == ["down"]
    assert seen[-1] == ("state", {"state": "cancelled", "error": "cancelled"})
    # The pool kept its books: nothing is left running on the busy host's connection.
    assert fleet.context.execution.transports.pool.stats().active_channels == 0
