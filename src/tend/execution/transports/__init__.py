"""How commands reach hosts: the local machine or SSH, behind one ``Transport`` interface."""

from tend.execution.transports.base import (
    DEFAULT_OUTPUT_CAP,
    CommandResult,
    CommandSpec,
    FailureKind,
    NewHostKey,
    OutputChunk,
    ResourceLimits,
    SshTarget,
    StreamSummary,
    Transport,
    TransportError,
    signal_name,
)
from tend.execution.transports.capture import BoundedCapture
from tend.execution.transports.local import DEFAULT_ENV_ALLOWLIST, LocalTransport
from tend.execution.transports.pool import PoolStats, SshPool
from tend.execution.transports.ssh import (
    SshConnection,
    SshConnector,
    SshTransport,
    build_remote_command,
)

__all__ = [
    "DEFAULT_ENV_ALLOWLIST",
    "DEFAULT_OUTPUT_CAP",
    "BoundedCapture",
    "CommandResult",
    "CommandSpec",
    "FailureKind",
    "LocalTransport",
    "NewHostKey",
    "OutputChunk",
    "PoolStats",
    "ResourceLimits",
    "SshConnection",
    "SshConnector",
    "SshPool",
    "SshTarget",
    "SshTransport",
    "StreamSummary",
    "Transport",
    "TransportError",
    "build_remote_command",
    "signal_name",
]
