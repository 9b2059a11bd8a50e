"""SSH execution over asyncssh: connection setup, host key policy, and the command stream.

The remote command line is built only with :func:`shlex.join`, which quotes every argument for a
POSIX shell: the remote ``sshd`` hands the string to the user's login shell, which must therefore
be POSIX-compatible (sh, bash, dash, zsh, ksh — not csh or fish). Every command is sent behind a
fixed prefix that reports its remote PID and ``exec``s it (see :mod:`.remote_process`), so a
cancelled or timed-out command is stopped on the remote host too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import socket
import time
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import asyncssh

from tend.execution.transports.base import (
    CommandResult,
    CommandSpec,
    FailureKind,
    NewHostKey,
    OutputChunk,
    SshTarget,
    TransportError,
    final_result,
)
from tend.execution.transports.capture import BoundedCapture
from tend.execution.transports.channel import SshSession, StreamName
from tend.execution.transports.local import validate_env
from tend.execution.transports.remote_process import new_nonce, report_pid, signal_group

if TYPE_CHECKING:
    from tend.execution.transports.pool import SshPool

__all__ = [
    "SshConnection",
    "SshConnector",
    "SshSession",
    "SshTransport",
    "StaleConnectionError",
    "build_remote_command",
    "openssh_line",
    "where",
]

logger = logging.getLogger("tend.execution.ssh")

# Kill channels open at once per connection: with the pool's channels per host they stay within
# sshd's default MaxSessions (10).
_KILL_CHANNELS = 2

# --------------------------------------------------------------------------- the command line


def build_remote_command(spec: CommandSpec, *, remote_deadline: float | None = None) -> str:
    """The command line for ``spec`` (sent behind the PID-reporting prefix of ``report_pid``).

    It is ``shlex.join(argv)``. When the spec asks for a working directory or extra environment,
    argv is prefixed with ``env [-C DIR] -- NAME=VALUE...`` (GNU coreutils ``env``) and still
    joined with ``shlex.join`` — no other string building is ever done.

    With ``remote_deadline`` the command runs under coreutils ``timeout`` on the remote host, so
    it dies there even when sshd refuses to deliver signals (it does for root sessions).

    Raises:
        ValueError: On an empty argv, an element containing NUL or a newline, or a bad
            environment name.
        TypeError: If argv is not a list of strings.
    """
    if isinstance(spec.argv, str | bytes):
        raise TypeError("argv must be a list of strings, not a single string")
    argv = list(spec.argv)
    if not argv:
        raise ValueError("argv must not be empty")
    for item in argv:
        if not isinstance(item, str):
            raise TypeError("argv elements must be strings")
        if "\x00" in item or "\n" in item or "\r" in item:
            raise ValueError("argv elements must not contain NUL, CR or newline over SSH")
    env = validate_env(spec.env)
    for name, value in env.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"environment variable {name} must not contain a newline over SSH")
    if spec.cwd is not None and ("\x00" in spec.cwd or "\n" in spec.cwd or "\r" in spec.cwd):
        raise ValueError("cwd must not contain NUL, CR or newline")
    deadline: list[str] = []
    if remote_deadline is not None:
        deadline = ["timeout", "--kill-after=2", f"{remote_deadline:.3f}"]
    if spec.cwd is None and not env:
        return shlex.join(deadline + argv)
    if "=" in argv[0]:
        raise ValueError("argv[0] must not contain '=' when env or cwd is set over SSH")
    prefix = ["env"]
    if spec.cwd is not None:
        prefix += ["-C", spec.cwd]
    prefix.append("--")
    prefix += [f"{name}={value}" for name, value in env.items()]
    return shlex.join(deadline + prefix + argv)


# --------------------------------------------------------------------------- host keys


def where(target: SshTarget) -> str:
    """``name (address:port)`` for messages."""
    return f"{target.name} ({target.address}:{target.port})"


def openssh_line(key: asyncssh.SSHKey) -> str:
    """``ssh-ed25519 AAAA...`` for a public key (no comment)."""
    fields = key.export_public_key("openssh").decode("ascii").split()
    return " ".join(fields[:2])


class _HostKeyCheck:
    """Decides whether one hop's presented host key is trusted, and remembers what happened."""

    def __init__(
        self,
        target: SshTarget,
        pinned: list[asyncssh.SSHKey],
        known_hosts: asyncssh.SSHKnownHosts | None,
        trust_on_first_use: bool,
    ) -> None:
        self.target = target
        self.pinned = pinned
        self.file = known_hosts
        self.trust_on_first_use = trust_on_first_use
        self.had_known = False
        self.presented: asyncssh.SSHKey | None = None
        self.accepted: str | None = None

    def known_hosts(
        self, host: str, addr: str, port: int | None
    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """The ``known_hosts`` callable for asyncssh: trusted, CA and revoked keys of the host."""
        trusted = list(self.pinned)
        cas: list[asyncssh.SSHKey] = []
        revoked: list[asyncssh.SSHKey] = []
        if not trusted and self.file is not None:
            for name in dict.fromkeys((host, self.target.name, self.target.address)):
                matched = self.file.match(name, addr, port)
                trusted += matched[0]
                cas += matched[1]
                revoked += matched[2]
        self.had_known = bool(trusted or cas)
        return trusted, cas, revoked

    def validate(self, key: asyncssh.SSHKey) -> bool:
        """Called for a key not among the trusted ones: accept only a first-use key under TOFU."""
        self.presented = key
        if self.had_known or not self.trust_on_first_use:
            return False
        self.accepted = openssh_line(key)
        return True


class _Client(asyncssh.SSHClient):
    """The per-connection asyncssh client: host key decisions and liveness."""

    def __init__(self, check: _HostKeyCheck) -> None:
        self.check = check
        self.lost = False

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self.check.validate(key)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def _map_connect_error(exc: BaseException, hop: SshTarget, check: _HostKeyCheck) -> TransportError:
    """Turn whatever connecting raised into a TransportError naming the host."""
    at = where(hop)
    if isinstance(exc, asyncssh.HostKeyNotVerifiable) or (
        isinstance(exc, asyncssh.KeyExchangeFailed) and check.had_known and check.presented is None
    ):
        if check.had_known:
            presented = openssh_line(check.presented) if check.presented is not None else "none"
            message = (
                f"HOST KEY OF {hop.name} HAS CHANGED: {at} presented a key that is not the one "
                f"it is known by (presented: {presented}); this is a possible man-in-the-middle "
                "attack, or the host was reinstalled. Refusing to connect."
            )
            logger.error(message)
            return TransportError(FailureKind.HOST_KEY_CHANGED, message)
        return TransportError(
            FailureKind.HOST_KEY_UNKNOWN,
            f"host key of {hop.name} is not known; add it to known_hosts or add the host with "
            f"trust-on-first-use ({at})",
        )
    if isinstance(exc, socket.gaierror):
        return TransportError(
            FailureKind.DNS, f"cannot resolve {hop.address!r} for {at}: {exc.strerror or exc}"
        )
    if isinstance(exc, ConnectionRefusedError):
        return TransportError(FailureKind.REFUSED, f"{at} refused the connection")
    if isinstance(exc, TimeoutError):
        return TransportError(
            FailureKind.TIMEOUT, f"could not connect to {at} within {hop.connect_timeout:g} s"
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return TransportError(
            FailureKind.AUTH,
            f"{at} rejected the login as {hop.user or 'the default user'}: no accepted key",
        )
    if isinstance(exc, asyncssh.KeyImportError):
        return TransportError(FailureKind.AUTH, f"cannot use a client key for {at}: {exc}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        # Raised when a jump host could not open the tunnel to this hop.
        kind = (
            FailureKind.REFUSED
            if exc.code == asyncssh.OPEN_CONNECT_FAILED
            else FailureKind.CONNECTION_LOST
        )
        return TransportError(kind, f"the jump host could not reach {at}: {exc.reason}")
    if isinstance(exc, asyncssh.DisconnectError):
        return TransportError(
            FailureKind.CONNECTION_LOST, f"connection to {at} was lost: {exc.reason}"
        )
    if isinstance(exc, ConnectionError):
        return TransportError(FailureKind.CONNECTION_LOST, f"connection to {at} was lost: {exc}")
    if isinstance(exc, OSError):
        return TransportError(FailureKind.OTHER, f"cannot connect to {at}: {exc.strerror or exc}")
    return TransportError(FailureKind.OTHER, f"cannot connect to {at}: {exc}")


# --------------------------------------------------------------------------- sessions


class StaleConnectionError(Exception):
    """The cached connection was found dead before the command started: safe to reconnect."""


# --------------------------------------------------------------------------- connections


class SshConnection:
    """An established SSH connection to a target, with the jump-host connections under it."""

    def __init__(
        self,
        target: SshTarget,
        conns: list[asyncssh.SSHClientConnection],
        clients: list[_Client],
    ) -> None:
        """Wrap a chain of connections; the last one reaches ``target``."""
        self.target = target
        self._conns = conns
        self._clients = clients
        self._kill_slots = asyncio.Semaphore(_KILL_CHANNELS)

    @property
    def alive(self) -> bool:
        """Whether every hop of the connection is still up."""
        return not any(client.lost for client in self._clients) and not any(
            conn.is_closed() for conn in self._conns
        )

    async def open_session(self, command: str) -> SshSession:
        """Open a session channel and start ``command`` on it (reporting its remote PID).

        Raises:
            StaleConnectionError: When the connection turned out to be dead before the command
                could have started (the caller may reconnect and retry).
            TransportError: When it failed after the command may have started, or the server
                refused to run it.
        """
        nonce = new_nonce()
        session = SshSession(nonce, self.signal_group)
        try:
            await self._conns[-1].create_session(
                lambda: session, report_pid(command, nonce), encoding=None, request_pty=False
            )
        except (asyncssh.Error, OSError) as exc:
            at = where(self.target)
            dropped = not self.alive or isinstance(
                exc, asyncssh.DisconnectError | BrokenPipeError | ConnectionResetError
            )
            if not session.started and dropped:
                raise StaleConnectionError(str(exc)) from exc
            if not session.started:
                # The connection is fine but the server will not open another session (e.g.
                # its MaxSessions is reached): nothing ran, and reconnecting would not help.
                reason = exc.reason if isinstance(exc, asyncssh.ChannelOpenError) else str(exc)
                raise TransportError(
                    FailureKind.OTHER, f"{at} refused to open a session: {reason}"
                ) from exc
            if isinstance(exc, asyncssh.ChannelOpenError):
                raise TransportError(
                    FailureKind.OTHER, f"{at} refused to run the command: {exc.reason}"
                ) from exc
            raise TransportError(
                FailureKind.CONNECTION_LOST,
                f"connection to {at} was lost while starting the command; it may or may not "
                "have started",
            ) from exc
        return session

    async def signal_group(self, pid: int, grace: float) -> bool:
        """Stop the remote process group ``pid`` through a second channel (never raises)."""
        async with self._kill_slots:
            return await signal_group(self._conns[-1], pid, grace, where(self.target))

    def close(self) -> None:
        """Start closing the connection and its jump hops."""
        for conn in reversed(self._conns):
            conn.close()

    async def wait_closed(self, limit: float = 5.0) -> None:
        """Wait (at most ``limit`` seconds per hop) until every hop is closed."""
        for conn in reversed(self._conns):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(limit):
                    await conn.wait_closed()


class SshConnector:
    """Opens SSH connections for targets: keys, agent, host key policy, jump hosts.

    Keys accepted by trust-on-first-use are remembered here, so a later reconnect verifies the
    host against them instead of trusting again (and ``on_new_host_key`` runs once per host).
    """

    def __init__(
        self,
        *,
        keepalive_interval: float = 15.0,
        on_new_host_key: NewHostKey | None = None,
    ) -> None:
        """Create the connector.

        Args:
            keepalive_interval: Seconds between SSH keepalives (0 disables them).
            on_new_host_key: Awaited once with (target, key line) when TOFU accepts a key.
        """
        self.keepalive_interval = keepalive_interval
        self.on_new_host_key = on_new_host_key
        self._learned: dict[tuple[str, str, int], str] = {}

    async def connect(self, target: SshTarget) -> SshConnection:
        """Connect to ``target`` through its jump hosts (``target.jump``, in order).

        Raises:
            TransportError: Naming the hop that failed and why.
        """
        conns: list[asyncssh.SSHClientConnection] = []
        clients: list[_Client] = []
        try:
            for hop in (*target.jump, target):
                tunnel = conns[-1] if conns else None
                try:
                    conn, client = await self._connect_hop(hop, tunnel)
                except TransportError as exc:
                    if hop is not target:
                        exc.message = (
                            f"jump host {hop.name} (on the way to {target.name}): {exc.message}"
                        )
                        exc.args = (exc.message,)
                    raise
                conns.append(conn)
                clients.append(client)
        except BaseException:
            for conn in reversed(conns):
                conn.close()
            raise
        return SshConnection(target, conns, clients)

    def _host_key_check(self, hop: SshTarget) -> _HostKeyCheck:
        pinned_lines = list(hop.known_host_keys)
        if not pinned_lines and (learned := self._learned.get(_learn_key(hop))):
            pinned_lines = [learned]
        pinned: list[asyncssh.SSHKey] = []
        for line in pinned_lines:
            try:
                pinned.append(asyncssh.import_public_key(line))
            except (asyncssh.KeyImportError, ValueError) as exc:
                raise TransportError(
                    FailureKind.OTHER, f"a known host key of {where(hop)} is not valid: {exc}"
                ) from exc
        known: asyncssh.SSHKnownHosts | None = None
        if not pinned and hop.known_hosts_file is not None and hop.known_hosts_file.is_file():
            try:
                known = asyncssh.read_known_hosts(str(hop.known_hosts_file))
            except (OSError, ValueError) as exc:
                raise TransportError(
                    FailureKind.OTHER,
                    f"cannot read known_hosts file {hop.known_hosts_file}: {exc}",
                ) from exc
        return _HostKeyCheck(hop, pinned, known, hop.trust_on_first_use)

    def _auth_options(self, hop: SshTarget) -> dict[str, object]:
        agent = os.environ.get("SSH_AUTH_SOCK") if hop.use_agent else None
        for path in hop.key_files:
            if not Path(path).is_file():
                raise TransportError(
                    FailureKind.AUTH, f"client key file {path} for {where(hop)} does not exist"
                )
        options: dict[str, object] = {}
        if hop.key_files:
            # Paths only: asyncssh reads the keys for this connect; tend never stores them.
            options["client_keys"] = [str(path) for path in hop.key_files]
            options["agent_path"] = agent
        elif agent:
            # Agent only (asyncssh then also tries the default ~/.ssh/id_* keys, like ssh does).
            options["client_keys"] = []
            options["agent_path"] = agent
        else:
            options["client_keys"] = None
        options["ignore_encrypted"] = False
        if hop.user:
            options["username"] = hop.user
        return options

    async def _connect_hop(
        self, hop: SshTarget, tunnel: asyncssh.SSHClientConnection | None
    ) -> tuple[asyncssh.SSHClientConnection, _Client]:
        check = self._host_key_check(hop)
        options = self._auth_options(hop)
        client = _Client(check)
        try:
            conn = await asyncssh.connect(
                hop.address,
                hop.port,
                tunnel=tunnel if tunnel is not None else (),
                config=None,
                known_hosts=check.known_hosts,
                client_factory=lambda: client,
                connect_timeout=hop.connect_timeout,
                login_timeout=max(hop.connect_timeout, 1.0),
                keepalive_interval=self.keepalive_interval,
                password_auth=False,
                kbdint_auth=False,
                host_based_auth=False,
                gss_auth=False,
                gss_kex=False,
                agent_forwarding=False,
                **options,
            )
        except Exception as exc:
            raise _map_connect_error(exc, hop, check) from exc
        if check.accepted is not None:
            await self._record_new_key(hop, check.accepted, conn)
        return conn, client

    async def _record_new_key(
        self, hop: SshTarget, line: str, conn: asyncssh.SSHClientConnection
    ) -> None:
        logger.warning("trusting the host key of %s on first use: %s", where(hop), line)
        self._learned[_learn_key(hop)] = line
        if self.on_new_host_key is None:
            return
        try:
            await self.on_new_host_key(hop, line)
        except Exception as exc:
            conn.close()
            self._learned.pop(_learn_key(hop), None)
            raise TransportError(
                FailureKind.OTHER, f"could not record the new host key of {where(hop)}: {exc}"
            ) from exc


def _learn_key(hop: SshTarget) -> tuple[str, str, int]:
    return (hop.name, hop.address, hop.port)


# --------------------------------------------------------------------------- the transport


class SshTransport:
    """Runs argv on one SSH target over a pooled connection (see :class:`SshPool`)."""

    def __init__(
        self,
        pool: SshPool,
        target: SshTarget,
        *,
        kill_grace: float = 2.0,
        drain_timeout: float = 1.0,
        remote_timeout: bool = True,
    ) -> None:
        """Create the transport.

        Args:
            pool: The connection pool to use.
            target: The host.
            kill_grace: Seconds between the remote SIGTERM and SIGKILL on timeout.
            drain_timeout: After the remote command exited (or was killed), how long to wait for
                the channel to close before closing it ourselves.
            remote_timeout: Also enforce the timeout on the remote host with coreutils
                ``timeout`` (needs it there; sshd does not deliver signals to root sessions).
        """
        self.pool = pool
        self.target = target
        self.kill_grace = kill_grace
        self.drain_timeout = drain_timeout
        self.remote_timeout = remote_timeout

    async def run(self, spec: CommandSpec) -> CommandResult:
        """Run to completion and return the result (output capped per ``spec.output_cap``).

        Raises:
            TransportError: When the host cannot run the command.
        """
        return await final_result(self.stream(spec))

    async def stream(self, spec: CommandSpec) -> AsyncGenerator[OutputChunk | CommandResult, None]:
        """Yield output chunks as they arrive, then exactly one ``CommandResult``.

        Raises:
            TransportError: When the host cannot run the command (connect, auth, host key...).
            ValueError: On an argv that cannot be sent safely.
        """
        # The remote deadline fires just after ours, as a backstop for when signals are refused.
        deadline = spec.timeout + self.kill_grace + 1.0 if self.remote_timeout else None
        command = build_remote_command(spec, remote_deadline=deadline)
        if spec.timeout <= 0:
            raise ValueError("timeout must be positive")
        started = time.monotonic()
        async with self.pool.session(self.target, command) as session:
            session.kill_grace = self.kill_grace
            chan = session.chan
            assert chan is not None
            with contextlib.suppress(OSError):
                if spec.stdin:
                    chan.write(spec.stdin)
                chan.write_eof()
            captures: Mapping[StreamName, BoundedCapture] = {
                "stdout": BoundedCapture(spec.output_cap),
                "stderr": BoundedCapture(spec.output_cap),
            }
            timed_out = False
            async with contextlib.aclosing(self._pump(session, started + spec.timeout)) as pump:
                async for item in pump:
                    if isinstance(item, OutputChunk):
                        captures[item.stream].feed(item.data)
                        yield item
                    else:
                        timed_out = True
            if session.close_exc is not None and session.exited_at is None and not timed_out:
                raise TransportError(
                    FailureKind.CONNECTION_LOST,
                    f"connection to {where(self.target)} was lost while the command was "
                    "running; it may or may not have completed",
                ) from session.close_exc
            yield CommandResult(
                exit_code=None if timed_out else session.exit_status,
                signal=session.exit_signal,
                stdout=captures["stdout"].summary(),
                stderr=captures["stderr"].summary(),
                duration=time.monotonic() - started,
                timed_out=timed_out,
            )

    async def _pump(
        self, session: SshSession, deadline: float
    ) -> AsyncGenerator[OutputChunk | Literal["timed_out"], None]:
        """Yield output until the channel closes; escalate TERM, KILL, close on timeout."""
        stage = 0  # 0: running, 1: TERM sent, 2: KILL sent
        stage_at = 0.0
        while True:
            while (item := session.pop()) is not None:
                yield OutputChunk(stream=item[0], data=item[1])
            if session.closed:
                return
            now = time.monotonic()
            if stage == 0:
                exited_at = session.exited_at
                # After the exit status, wait for the rest of the output while it still flows
                # (a busy event loop or a paused channel can deliver it well after the exit).
                due = (
                    deadline
                    if exited_at is None
                    else max(exited_at, session.last_data_at) + self.drain_timeout
                )
            elif stage == 1:
                due = stage_at + self.kill_grace
            else:
                due = stage_at + self.drain_timeout
            if now < due:
                await session.wait(due - now)
            elif stage == 0 and session.exited_at is None:
                session.send_signal("TERM")
                session.stop_remote(self.kill_grace)
                stage, stage_at = 1, now
                yield "timed_out"
            elif stage == 1:
                session.send_signal("KILL")
                stage, stage_at = 2, now
            else:
                # Exited (or killed) but the channel stays open: something remote still holds
                # its output open. Stop waiting for it.
                await session.close()
                while (item := session.pop()) is not None:
                    yield OutputChunk(stream=item[0], data=item[1])
                return
