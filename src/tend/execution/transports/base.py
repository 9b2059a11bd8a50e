"""The one interface every transport implements, and what a command run returns."""

from __future__ import annotations

import signal as signal_module
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol

DEFAULT_OUTPUT_CAP = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """rlimits applied to a local command (``None`` leaves a limit as inherited)."""

    cpu_seconds: int | None = 300
    address_space_bytes: int | None = 4 * 1024**3
    file_size_bytes: int | None = 1024**3
    open_files: int | None = 1024


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command to run: an argv list (never a shell string) and how to run it."""

    argv: Sequence[str]
    timeout: float = 60.0
    stdin: bytes | None = None
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    output_cap: int = DEFAULT_OUTPUT_CAP


@dataclass(frozen=True, slots=True)
class OutputChunk:
    """A piece of output as it arrives."""

    stream: Literal["stdout", "stderr"]
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """What was captured of one output stream."""

    data: bytes
    total_bytes: int
    truncated: bool
    sha256: str


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The outcome of one command on one host."""

    exit_code: int | None
    signal: str | None
    stdout: StreamSummary
    stderr: StreamSummary
    duration: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """Whether the command exited 0 without timing out."""
        return self.exit_code == 0 and not self.timed_out


class FailureKind(StrEnum):
    """Why a host could not run a command at all."""

    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    AUTH = "auth"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    HOST_KEY_CHANGED = "host_key_changed"
    CONNECTION_LOST = "connection_lost"
    SPAWN = "spawn"
    OTHER = "other"


class TransportError(Exception):
    """A host could not run the command; ``kind`` says why in a word, the message in a sentence."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        """Create the error.

        Args:
            kind: The failure class.
            message: A human sentence naming the host and the cause.
        """
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Everything needed to reach a host over SSH. Secrets are never held here, only paths."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    key_files: tuple[Path, ...] = ()
    use_agent: bool = True
    # Host keys this host is known by (OpenSSH public key lines, e.g. "ssh-ed25519 AAAA...").
    known_host_keys: tuple[str, ...] = ()
    # Additionally consult this known_hosts file (tend's own, or ~/.ssh/known_hosts).
    known_hosts_file: Path | None = None
    trust_on_first_use: bool = False
    jump: tuple[SshTarget, ...] = ()
    connect_timeout: float = 10.0


class NewHostKey(Protocol):
    """Called once when a host's key was accepted by trust-on-first-use, to record it."""

    async def __call__(self, target: SshTarget, public_key: str) -> None:
        """Record the key (OpenSSH public key line) for the target."""


class Transport(Protocol):
    """Runs argv on one kind of host. ``run`` consumes ``stream``: one loop serves both."""

    def stream(self, spec: CommandSpec) -> AsyncIterator[OutputChunk | CommandResult]:
        """Yield output chunks as they arrive, then exactly one ``CommandResult`` last.

        Raises:
            TransportError: When the host cannot run the command at all.
        """
        ...

    async def run(self, spec: CommandSpec) -> CommandResult:
        """Run to completion and return the result (output capped per ``spec.output_cap``)."""
        ...


async def final_result(stream: AsyncGenerator[OutputChunk | CommandResult, None]) -> CommandResult:
    """Consume a transport's stream and return its result (``run`` is ``stream`` consumed).

    Raises:
        TransportError: When the stream ends without a result.
    """
    try:
        async for item in stream:
            if isinstance(item, CommandResult):
                return item
    finally:
        await stream.aclose()
    raise TransportError(FailureKind.OTHER, "the command ended without a result")


def signal_name(number: int) -> str:
    """Return ``SIGKILL`` for 9 and so on (``SIG<number>`` when unknown)."""
    try:
        return signal_module.Signals(number).name
    except ValueError:
        return f"SIG{number}"
