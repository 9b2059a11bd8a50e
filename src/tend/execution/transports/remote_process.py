"""Finding and stopping the remote process of an SSH command without sshd's help.

OpenSSH does not reliably deliver channel ``signal`` requests (it refuses them for root
sessions), and closing a channel does not stop the command. So every command reports its PID
first: the remote shell prints one marker line on stderr and then ``exec``s the command, which
therefore keeps that PID. sshd starts each session's shell with ``setsid``, so the PID is also
the id of the command's process group (coreutils ``timeout`` cannot move itself out of it: a
session leader may not change its group). To stop the command, tend opens a second, short
``exec`` channel on the same connection that sends TERM to the group and KILL after a grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets

import asyncssh

logger = logging.getLogger("tend.execution.ssh")

# The marker must arrive within this many bytes of stderr; otherwise stderr is passed through.
_MARKER_WINDOW = 4096
_POLL_STEP = 0.1
# Slack for opening the kill channel and the remote shell's start-up, on top of the grace.
KILL_SLACK = 3.0
_TAG = b"tend-pid:"


def new_nonce() -> str:
    """A random token that makes one command's marker line impossible to predict."""
    return secrets.token_hex(8)


def report_pid(command: str, nonce: str) -> str:
    """``command`` preceded by a marker line on stderr that gives the remote shell's PID.

    The shell then ``exec``s ``command``, so the PID is the command's own (and its exit status
    or signal reaches sshd unchanged). ``command`` is used as is: it is already a complete,
    quoted command line from :func:`shlex.join`. A command starting with ``-`` is not
    ``exec``'d (some shells' ``exec`` would read it as an option); it then runs as a child in
    the same process group, which is what gets signalled.
    """
    if not nonce.isalnum():
        raise ValueError("the marker nonce must be alphanumeric")
    run = command if command.startswith("-") else f"exec {command}"
    return f"printf '%s\\n' {_TAG.decode()}{nonce}:$$ >&2; {run}"


class PidMarker:
    """Removes the marker line from the start of stderr and keeps the PID it gives.

    stderr is held back until the marker line is complete, at most ``_MARKER_WINDOW`` bytes;
    bytes around it (a login script's noise) pass through unchanged, so users never see the
    marker and output sizes and hashes are those of the command alone.
    """

    __slots__ = ("_held", "_tag", "done", "pid")

    def __init__(self, nonce: str) -> None:
        """Look for the marker of ``nonce``."""
        self._tag = _TAG + nonce.encode("ascii") + b":"
        self._held = bytearray()
        self.pid: int | None = None
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Take the next stderr bytes; return what may be passed on now."""
        if self.done:
            return data
        self._held += data
        start = self._held.find(self._tag)
        if start >= 0:
            end = self._held.find(b"\n", start)
            if end >= 0:
                digits = bytes(self._held[start + len(self._tag) : end])
                if digits.isdigit() and 1 < int(digits) < 2**31:
                    self.pid = int(digits)
                del self._held[start : end + 1]
                return self.flush()
        if len(self._held) > _MARKER_WINDOW:
            return self.flush()
        return b""

    def flush(self) -> bytes:
        """Stop looking (stream ended or marker found) and return what was held back."""
        held = bytes(self._held)
        self._held.clear()
        self.done = True
        return held


def kill_script(pid: int, grace: float) -> str:
    """A POSIX sh line: TERM the process group ``pid``, KILL it if it outlives ``grace``."""
    if pid <= 1:
        raise ValueError("refusing to signal process group 0 or 1")
    group = f"-{int(pid)}"
    steps = max(1, math.ceil(grace / _POLL_STEP))
    return (
        f"kill -s TERM -- {group} 2>/dev/null || exit 0; n=0; "
        f"while kill -s 0 -- {group} 2>/dev/null; do "
        f"if [ $n -ge {steps} ]; then kill -s KILL -- {group} 2>/dev/null; exit 0; fi; "
        f"sleep {_POLL_STEP}; n=$((n+1)); done"
    )


async def signal_group(
    conn: asyncssh.SSHClientConnection, pid: int, grace: float, where: str
) -> bool:
    """Run :func:`kill_script` on a second channel of ``conn``, bounded in time.

    Returns:
        Whether the script ran to the end (the group is gone, or was sent KILL). Failures are
        logged, never raised: this runs on cancellation paths.
    """
    chan: asyncssh.SSHClientChannel[bytes] | None = None
    try:
        async with asyncio.timeout(grace + KILL_SLACK):
            chan, _ = await conn.create_session(
                asyncssh.SSHClientSession, kill_script(pid, grace), encoding=None
            )
            chan.write_eof()
            await chan.wait_closed()
            status = chan.get_exit_status()
    except (TimeoutError, asyncssh.Error, OSError, ValueError) as exc:
        logger.warning("could not stop remote process group %s on %s: %s", pid, where, exc)
        return False
    finally:
        if chan is not None:
            with contextlib.suppress(OSError):
                chan.close()
    logger.debug("signalled remote process group %s on %s (exit %s)", pid, where, status)
    return status == 0
