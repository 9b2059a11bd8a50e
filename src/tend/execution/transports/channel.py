"""One command's SSH channel: output buffered with flow control, how it ended, how to stop it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import asyncssh

from tend.execution.transports.remote_process import KILL_SLACK, PidMarker

logger = logging.getLogger("tend.execution.ssh")

StreamName = Literal["stdout", "stderr"]
# Pause reading from the channel when this much output waits for the consumer.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
CLOSE_WAIT = 0.5
# Tasks stopping remote commands, kept referenced until done (a second cancel does not stop them).
_stoppers: set[asyncio.Task[bool]] = set()

Killer = Callable[[int, float], Awaitable[bool]]


class SshSession(asyncssh.SSHClientSession[bytes]):
    """One command's channel: buffers output with flow control and records how it ended.

    With a ``nonce`` the command reports its remote PID in a marker line on stderr (see
    :mod:`tend.execution.transports.remote_process`); the line is removed from the output and
    ``killer`` is used to stop the remote process group when the command must be stopped.
    """

    def __init__(self, nonce: str | None = None, killer: Killer | None = None) -> None:
        """Create the session (asyncssh attaches the channel)."""
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.started = False
        self.closed = False
        self.close_exc: Exception | None = None
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.exited_at: float | None = None
        self.last_data_at = 0.0
        self.close_requested = False
        self._chunks: collections.deque[tuple[StreamName, bytes]] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._wakeup = asyncio.Event()
        self.marker = PidMarker(nonce) if nonce is not None else None
        self.killer = killer
        self.kill_grace = 2.0
        self._reported = asyncio.Event()  # the PID is known, or never will be
        self._stopper: asyncio.Task[bool] | None = None

    # asyncssh callbacks
    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        """The channel is open; from now on the command may have started."""
        self.chan = chan
        self.started = True

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        """Queue output, pausing the channel when the consumer falls behind."""
        name: StreamName = "stderr" if datatype == asyncssh.EXTENDED_DATA_STDERR else "stdout"
        if name == "stderr" and self.marker is not None and not self.marker.done:
            data = self._strip_marker(self.marker, data)
            if not data:
                self._wakeup.set()
                return
        self._chunks.append((name, data))
        self._buffered += len(data)
        self.last_data_at = time.monotonic()
        if self._buffered > _HIGH_WATER and not self._paused and self.chan is not None:
            self._paused = True
            self.chan.pause_reading()
        self._wakeup.set()

    def exit_status_received(self, status: int) -> None:
        """Record the exit status."""
        self._end_marker()
        self.exit_status = status
        self.exited_at = time.monotonic()
        self._wakeup.set()

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        """Record the signal that ended the command."""
        self._end_marker()
        self.exit_signal = signal if signal.startswith("SIG") else f"SIG{signal}"
        self.exited_at = time.monotonic()
        self._wakeup.set()

    def connection_lost(self, exc: Exception | None) -> None:
        """The channel is closed (``exc`` is set when the connection died)."""
        self._end_marker()
        self.closed = True
        self.close_exc = exc
        self._wakeup.set()

    def _strip_marker(self, marker: PidMarker, data: bytes) -> bytes:
        """Feed stderr to the marker parser; note when the PID is known (or never will be)."""
        passed = marker.feed(data)
        if marker.done:
            self._reported.set()
        return passed

    def _end_marker(self) -> None:
        """The command ended: stop looking for the marker and release held-back stderr."""
        if self.marker is not None and not self.marker.done:
            held = self.marker.flush()
            if held:
                self._chunks.append(("stderr", held))
                self._buffered += len(held)
        self._reported.set()

    @property
    def remote_pid(self) -> int | None:
        """The remote command's PID (and process group), once its marker line arrived."""
        return self.marker.pid if self.marker is not None else None

    # consumer side
    def pop(self) -> tuple[StreamName, bytes] | None:
        """The next buffered chunk, if any."""
        if not self._chunks:
            return None
        item = self._chunks.popleft()
        self._buffered -= len(item[1])
        if self._paused and self._buffered <= _LOW_WATER and self.chan is not None:
            self._paused = False
            self.chan.resume_reading()
        return item

    async def wait(self, limit: float) -> None:
        """Wait until something happens on the channel, or ``limit`` seconds."""
        if not self._chunks and not self.closed:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that
            # arrives just as output does, and the cancelled command would run on.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(limit):
                    await self._wakeup.wait()
        self._wakeup.clear()

    def send_signal(self, name: str) -> None:
        """Ask the server to signal the remote process (ignored by servers that cannot)."""
        if self.chan is not None and not self.closed:
            with contextlib.suppress(OSError, ValueError):
                self.chan.send_signal(name)

    async def close(self, wait: float = CLOSE_WAIT) -> None:
        """Close the channel and wait (at most ``wait`` seconds) for the server to confirm.

        A server that cannot signal the command keeps the channel half-open until the command
        ends by itself; tend stops waiting for it.
        """
        if self.chan is None:
            return
        if not self.closed:
            self.close_requested = True
            self.chan.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self.chan.wait_closed()

    def stop_remote(self, grace: float) -> asyncio.Task[bool]:
        """Start (once) stopping the remote process group: TERM, then KILL after ``grace``.

        It runs in its own task, bounded in time, so it finishes even if the caller is
        cancelled again. The task's result says whether the remote kill ran.
        """
        if self._stopper is None:
            self._stopper = asyncio.create_task(self._stop_remote(grace))
            _stoppers.add(self._stopper)
            self._stopper.add_done_callback(_stoppers.discard)
        return self._stopper

    async def _stop_remote(self, grace: float) -> bool:
        if self.killer is None:
            return False
        with contextlib.suppress(TimeoutError):
            # The marker is the command's first output: it is here unless just started.
            async with asyncio.timeout(KILL_SLACK):
                await self._reported.wait()
        if self.closed:
            return True  # the command and everything holding its output are gone
        pid = self.remote_pid
        if pid is None:
            return False
        try:
            return await self.killer(pid, grace)
        except Exception:  # a cancel path must never fail because of the kill
            logger.exception("stopping remote process group %s failed", pid)
            return False

    async def abort(self) -> None:
        """Stop a command that is still running and close its channel.

        The remote process group gets TERM, and KILL after ``kill_grace`` if it is still there,
        through a second channel (sshd's own signal delivery is tried too but is unreliable).
        Failures are logged, never raised.
        """
        if self.chan is None:
            return
        if not self.closed and not self.close_requested:
            self.send_signal("TERM")
            self.stop_remote(self.kill_grace)
        if self._stopper is not None and not await asyncio.shield(self._stopper):
            self.send_signal("KILL")
        await self.close(0.5)
