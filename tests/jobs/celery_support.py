"""Helpers of the Celery tests: service probes, real worker/server processes, broker cleanup.

Every test gets its own broker queue (``tendtest-<hex>``): runs on host ``local`` are routed to it
(``TEND_QUEUE_ROUTES``), other jobs name it, and the workers consume only it, so concurrent test
sessions sharing a broker never take each other's messages. The queues are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI, Harness

REDIS_URL = os.environ.get("TEND_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
AMQP_URL = os.environ.get("TEND_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "amqp": AMQP_URL}
# The same brokers on a closed port: "the broker is down".
DEAD_BROKERS = {
    "redis": "redis://127.0.0.1:1/0",
    "amqp": "amqp://guest:guest@127.0.0.1:1//",
}

_problems: dict[str, str | None] = {}


def _probe(url: str) -> None:
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    else:
        from kombu import Connection

        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)


def require_service(name: str, url: str) -> None:
    """Fail in CI, or skip elsewhere with the reason, when a service does not answer."""
    if url not in _problems:
        try:
            _probe(url)
            _problems[url] = None
        except Exception as exc:  # any failure means "not usable"; the reason is reported
            _problems[url] = f"{type(exc).__name__}: {exc}"
    problem = _problems[url]
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{name} at {url} is unreachable in CI: {problem}")
        pytest.skip(f"{name} at {url} is unreachable: {problem}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pids_matching(pattern: str) -> list[int]:
    # "[x]yz" matches the process but never pgrep's own command line.
    found = subprocess.run(
        ["pgrep", "-f", f"[{pattern[0]}]{pattern[1:]}"], check=False, capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def kill_matching(pattern: str) -> None:
    """SIGKILL, one by one, the processes whose command line holds this test-unique pattern."""
    for pid in pids_matching(pattern):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<no log: {exc}>"


@dataclass
class Proc:
    """A real tend process (worker or server) started by a test."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``grace`` seconds."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


@dataclass
class CeleryCase:
    """One test's world: a fresh schema, a unique queue, its settings and its processes."""

    tmp_path: Path
    broker: str
    broker_url: str
    queue: str
    fields: dict[str, Any]
    script: Path
    marker: Path
    token: str
    procs: list[Proc] = field(default_factory=list)
    queues: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.queues.add(self.queue)

    def env(self, role: str, **overrides: Any) -> dict[str, str]:
        """The environment of a tend subprocess with this case's settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEND_")}
        values = {
            **self.fields,
            "data_dir": self.tmp_path / f"data-{role}",
            "password_hash_memory_kib": 1024,
            "password_hash_time_cost": 1,
            "log_format": "json",
            **overrides,
        }
        for key, value in values.items():
            if value is None:
                continue
            text = json.dumps(value) if isinstance(value, list | dict | bool) else str(value)
            env[f"TEND_{key.upper()}"] = text
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(  # the test's own process; stopped by pid in teardown
                [sys.executable, "-m", "tend", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def spawn_worker(self, **overrides: Any) -> Proc:
        """Start ``tend worker`` on this case's queue (wait with :meth:`ready`)."""
        index = sum(p.name.startswith("worker") for p in self.procs)
        return self._spawn(
            f"worker{index}",
            ["worker", "--queues", self.queue, "--concurrency", "4"],
            self.env(f"worker{index}", **overrides),
        )

    def spawn_server(self) -> Proc:
        """Start ``tend serve`` on a free loopback port (wait with :meth:`ready`)."""
        port = free_port()
        proc = self._spawn(
            "server", ["serve", "--host", "127.0.0.1", "--port", str(port)], self.env("server")
        )
        proc.url = f"http://127.0.0.1:{port}"
        return proc

    async def ready(self, *procs: Proc, within: float = 30) -> None:
        """Wait until workers log "ready" and servers answer /health."""
        deadline = time.monotonic() + within
        waiting = list(procs)
        async with httpx.AsyncClient(timeout=2) as client:
            while waiting:
                for proc in list(waiting):
                    assert proc.alive(), f"{proc.name} exited early:\n{tail(proc.log)}"
                    if proc.url is None:
                        if b" ready." in proc.log.read_bytes():
                            waiting.remove(proc)
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{proc.url}/health")).status_code == 200:
                            waiting.remove(proc)
                if not waiting:
                    return
                names = [p.name for p in waiting]
                assert time.monotonic() < deadline, f"{names} not ready within {within} s"
                await asyncio.sleep(0.1)

    def stop_all(self) -> None:
        """Stop every process this case started and show the end of each log."""
        for proc in self.procs:  # all at once: each takes a moment to shut down warmly
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.stop()
        for pattern in (str(self.script), f"sleep {self.token}"):  # commands the jobs ran
            kill_matching(pattern)
        for proc in self.procs:
            print(f"----- {proc.name} (pid {proc.pid}) log tail -----\n{tail(proc.log)}")

    def purge_queues(self) -> None:
        """Delete this case's queues (and any message of theirs) from the broker."""
        if self.broker == "redis":
            _purge_redis(self.broker_url, self.queues)
        else:
            _purge_amqp(self.broker_url, self.queues)


def _purge_redis(url: str, queues: set[str]) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
    try:
        for queue in queues:
            keys = [
                *client.scan_iter(match=f"{queue}*"),
                f"_kombu.binding.{queue}",
                f"_kombu.binding_permanent.{queue}",
            ]
            client.delete(*keys)
        # Unacked deliveries (of killed workers) would be restored into the queue later.
        for tag, payload in client.hgetall("unacked").items():
            with contextlib.suppress(ValueError, TypeError, IndexError):
                _message, exchange, routing_key = json.loads(payload)
                if exchange in queues or routing_key in queues:
                    client.hdel("unacked", tag)
                    client.zrem("unacked_index", tag)
    finally:
        client.close()


def _purge_amqp(url: str, queues: set[str]) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=3) as conn:
        for queue in queues:
            with contextlib.suppress(Exception):
                conn.default_channel.queue_delete(queue)
            with contextlib.suppress(Exception):
                conn.default_channel.exchange_delete(queue)


async def wait_job(
    h: Harness, headers: dict[str, str], job_id: str, *states: str, within: float = 20
) -> dict[str, Any]:
    """Poll a job through the API until it reaches one of ``states``."""
    deadline = time.monotonic() + within
    while True:
        job: dict[str, Any] = (await h.client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job stuck in {job['state']}: {job}"
        await asyncio.sleep(0.1)


def worker_pid(job: dict[str, Any]) -> int:
    """The pid in a job's ``worker`` field (``host:pid:suffix``)."""
    return int(job["worker"].split(":")[1])
