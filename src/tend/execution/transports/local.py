"""Run argv on the tend server itself: no shell, own process group, rlimits, a clean environment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import subprocess
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any, Literal

from tend.execution.transports.base import (
    CommandResult,
    CommandSpec,
    FailureKind,
    OutputChunk,
    ResourceLimits,
    TransportError,
    final_result,
    signal_name,
)
from tend.execution.transports.capture import BoundedCapture

DEFAULT_ENV_ALLOWLIST: frozenset[str] = frozenset(
    {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "HOME", "USER", "LOGNAME", "TERM"}
)
FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHUNK_SIZE = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# After SIGKILL, how long to wait for the leader to be reaped before giving up on its status.
_REAP_LIMIT = 5.0

StreamName = Literal["stdout", "stderr"]


def validate_argv(argv: Sequence[str]) -> list[str]:
    """Check an argv list and return it as a list.

    Raises:
        TypeError: If it is not a list of strings.
        ValueError: If it is empty or an element contains NUL.
    """
    if isinstance(argv, str | bytes):
        raise TypeError("argv must be a list of strings, not a single string")
    items = list(argv)
    if not items:
        raise ValueError("argv must not be empty")
    for item in items:
        if not isinstance(item, str):
            raise TypeError("argv elements must be strings")
        if "\x00" in item:
            raise ValueError("argv elements must not contain NUL")
    return items


def validate_env(env: Mapping[str, str]) -> dict[str, str]:
    """Check extra environment entries (names like ``[A-Za-z_][A-Za-z0-9_]*``, no NUL).

    Raises:
        ValueError: On a bad name or a value containing NUL.
    """
    checked: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name: {name!r}")
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError(f"invalid value for environment variable {name}")
        checked[name] = value
    return checked


def _rlimit_plan(limits: ResourceLimits) -> list[tuple[int, tuple[int, int]]]:
    """Compute (resource, (soft, hard)) pairs in the parent, so the child only calls setrlimit."""
    wanted: list[tuple[int, int | None, int]] = [
        # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL one second later at the hard limit.
        (resource.RLIMIT_CPU, limits.cpu_seconds, 1),
        (resource.RLIMIT_AS, limits.address_space_bytes, 0),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes, 0),
        (resource.RLIMIT_NOFILE, limits.open_files, 0),
    ]
    plan: list[tuple[int, tuple[int, int]]] = []
    for res, value, hard_extra in wanted:
        if value is None:
            continue
        _cur_soft, cur_hard = resource.getrlimit(res)
        hard = value + hard_extra
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
        soft = min(value, hard)
        plan.append((res, (soft, hard)))
    return plan


def _make_preexec(plan: list[tuple[int, tuple[int, int]]]) -> Callable[[], None]:
    """A preexec_fn that only calls setrlimit (nothing that allocates much or takes locks)."""
    setrlimit = resource.setrlimit

    def preexec() -> None:
        for res, pair in plan:
            setrlimit(res, pair)

    return preexec


def _killpg(pgid: int, sig: int) -> None:
    """Signal a whole process group, ignoring a group that is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class LocalTransport:
    """Runs argv on the tend server itself.

    Every command runs without a shell in its own session and process group, with rlimits
    applied, and with only allowlisted variables of tend's own environment plus the spec's
    ``env``. On timeout the whole group gets SIGTERM and, after ``kill_grace`` seconds, SIGKILL.
    When the command finishes, is cancelled or its consumer stops early, whatever is left of its
    process group is killed: nothing a command starts outlives it inside its group.
    """

    def __init__(
        self,
        limits: ResourceLimits = ResourceLimits(),  # noqa: B008 - frozen, so a safe default
        env_allowlist: frozenset[str] = DEFAULT_ENV_ALLOWLIST,
        kill_grace: float = 2.0,
        drain_timeout: float = 0.5,
    ) -> None:
        """Create the transport.

        Args:
            limits: rlimits for every command.
            env_allowlist: Names of tend's own environment variables passed through.
            kill_grace: Seconds between SIGTERM and SIGKILL on timeout.
            drain_timeout: After the main process exits (or is killed), how long to keep reading
                output that processes left in its group still write to the pipes.
        """
        self.limits = limits
        self.env_allowlist = env_allowlist
        self.kill_grace = kill_grace
        self.drain_timeout = drain_timeout

    def build_env(self, extra: Mapping[str, str]) -> dict[str, str]:
        """The environment a command gets: allowlisted server variables plus ``extra``.

        Raises:
            ValueError: On an invalid name or value in ``extra``.
        """
        checked = validate_env(extra)
        env = {name: os.environ[name] for name in self.env_allowlist if name in os.environ}
        env.setdefault("PATH", FALLBACK_PATH)
        env.update(checked)
        return env

    async def run(self, spec: CommandSpec) -> CommandResult:
        """Run to completion and return the result (output capped per ``spec.output_cap``).

        Raises:
            TransportError: When the command cannot be started.
        """
        return await final_result(self.stream(spec))

    async def stream(self, spec: CommandSpec) -> AsyncGenerator[OutputChunk | CommandResult, None]:
        """Yield output chunks as they arrive, then exactly one ``CommandResult``.

        Raises:
            TransportError: ``SPAWN`` when the executable or cwd cannot be used.
            ValueError: On an invalid argv or environment.
        """
        argv = validate_argv(spec.argv)
        env = self.build_env(spec.env)
        if spec.timeout <= 0:
            raise ValueError("timeout must be positive")
        preexec = _make_preexec(_rlimit_plan(self.limits))
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _Protocol(CHUNK_SIZE, loop),
                *argv,
                stdin=subprocess.PIPE if spec.stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=spec.cwd,
                env=env,
                start_new_session=True,
                preexec_fn=preexec,
                close_fds=True,
            )
        except OSError as exc:
            raise TransportError(FailureKind.SPAWN, _spawn_message(argv[0], spec.cwd, exc)) from exc
        except subprocess.SubprocessError as exc:  # a failing preexec_fn
            raise TransportError(FailureKind.SPAWN, f"cannot start {argv[0]!r}: {exc}") from exc

        runner = _LocalRun(
            transport,
            protocol,
            spec,
            started=started,
            kill_grace=self.kill_grace,
            drain_timeout=self.drain_timeout,
        )
        pump = runner.pump()
        try:
            async for item in pump:
                yield item
        finally:
            try:
                await pump.aclose()
            finally:
                await runner.cleanup()


def _spawn_message(executable: str, cwd: str | None, exc: OSError) -> str:
    """Explain why a command could not be started."""
    if cwd is not None and exc.filename == cwd:
        return f"cannot start {executable!r}: working directory {cwd!r}: {exc.strerror}"
    if isinstance(exc, FileNotFoundError):
        return f"cannot start {executable!r}: executable not found"
    if isinstance(exc, PermissionError):
        return f"cannot start {executable!r}: permission denied"
    return f"cannot start {executable!r}: {exc.strerror or exc}"


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's stream protocol, plus a future that is done as soon as the leader exits.

    ``Process.wait()`` only returns once the pipes are closed as well, which a grandchild that
    keeps them open would delay forever; the exit itself is what the read loop needs to know.
    """

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


class _LocalRun:
    """The read loop of one local process, with timeout escalation and cleanup."""

    def __init__(
        self,
        transport: asyncio.SubprocessTransport,
        protocol: _Protocol,
        spec: CommandSpec,
        *,
        started: float,
        kill_grace: float,
        drain_timeout: float,
    ) -> None:
        self.transport = transport
        self.protocol = protocol
        self.pgid = transport.get_pid()  # start_new_session: the leader's pid is the group id
        self.spec = spec
        self.started = started
        self.kill_grace = kill_grace
        self.drain_timeout = drain_timeout
        self.captures: dict[StreamName, BoundedCapture] = {
            "stdout": BoundedCapture(spec.output_cap),
            "stderr": BoundedCapture(spec.output_cap),
        }
        self.reads: dict[asyncio.Task[bytes], StreamName] = {}
        self.exited = protocol.exited
        self.stdin_task: asyncio.Task[None] | None = None
        self.finished = False

    def _start_read(self, name: StreamName) -> None:
        reader = self.protocol.stdout if name == "stdout" else self.protocol.stderr
        assert reader is not None
        self.reads[asyncio.ensure_future(reader.read(CHUNK_SIZE))] = name

    async def _feed_stdin(self, data: bytes) -> None:
        writer = self.protocol.stdin
        assert writer is not None
        try:
            writer.write(data)
            await writer.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the command does not read its stdin; that is its business
        finally:
            writer.close()

    async def pump(self) -> AsyncGenerator[OutputChunk | CommandResult, None]:
        """Read both pipes concurrently until the command is done; yield chunks, then the result."""
        if self.spec.stdin is not None:
            self.stdin_task = asyncio.ensure_future(self._feed_stdin(self.spec.stdin))
        self._start_read("stdout")
        self._start_read("stderr")
        deadline = self.started + self.spec.timeout
        stage = 0  # 0: running, 1: SIGTERM sent, 2: SIGKILL sent
        stage_at = 0.0
        exited_at: float | None = None
        timed_out = False

        while self.reads or not self.exited.done():
            now = time.monotonic()
            if exited_at is None and self.exited.done():
                exited_at = now
            # When is the next escalation due?
            if stage == 0:
                due = deadline if exited_at is None else exited_at + self.drain_timeout
            elif stage == 1:
                due = stage_at + self.kill_grace
            else:
                due = stage_at + (self.drain_timeout if exited_at is not None else _REAP_LIMIT)
            if now >= due:
                if stage == 0 and exited_at is None:
                    timed_out = True
                    _killpg(self.pgid, signal.SIGTERM)
                    stage, stage_at = 1, now
                elif stage < 2:
                    # Grace is over, or the leader is gone but its group still holds the pipes.
                    _killpg(self.pgid, signal.SIGKILL)
                    stage, stage_at = 2, now
                else:
                    break  # the group is dead; stop reading whatever still lingers
                continue
            waiting: set[asyncio.Future[Any]] = set(self.reads)
            if not self.exited.done():
                waiting.add(self.exited)
            done, _ = await asyncio.wait(
                waiting, timeout=due - now, return_when=asyncio.FIRST_COMPLETED
            )
            for task in [t for t in self.reads if t in done]:
                name = self.reads.pop(task)
                data = task.result()
                if data:
                    self.captures[name].feed(data)
                    self._start_read(name)
                    yield OutputChunk(stream=name, data=data)

        # Output is complete; the leader's status (it was SIGKILLed at worst, so this is bounded).
        if not self.exited.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), _REAP_LIMIT)
        returncode = self.transport.get_returncode()
        self.finished = True
        yield CommandResult(
            exit_code=returncode if returncode is not None and returncode >= 0 else None,
            signal=signal_name(-returncode) if returncode is not None and returncode < 0 else None,
            stdout=self.captures["stdout"].summary(),
            stderr=self.captures["stderr"].summary(),
            duration=time.monotonic() - self.started,
            timed_out=timed_out,
        )

    async def cleanup(self) -> None:
        """Kill what is left of the group and release the pipes (runs on every exit path)."""
        _killpg(self.pgid, signal.SIGKILL)
        for task in self.reads:
            task.cancel()
        if self.stdin_task is not None:
            self.stdin_task.cancel()
        self.reads.clear()
        if not self.exited.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), _REAP_LIMIT)
        # Close our ends of the pipes (and SIGKILL the leader should it somehow still run).
        self.transport.close()
