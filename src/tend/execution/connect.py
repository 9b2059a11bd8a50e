"""Choose and build the transport for a host: local subprocess or pooled SSH."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from tend.execution.targets import HostSnapshot
from tend.execution.transports.base import SshTarget, Transport
from tend.execution.transports.local import LocalTransport
from tend.execution.transports.pool import SshPool
from tend.settings import Settings

_MAX_JUMPS = 8


def _split_hop(hop: str) -> tuple[str | None, str, int | None]:
    user, _, rest = hop.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = int(tail[1:]) if tail.startswith(":") else None
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = int(port_text)
    return user or None, host, port


class Transports:
    """Hands out the transport for each host; owns the SSH pool and the local transport."""

    def __init__(self, settings: Settings, pool: SshPool, local: LocalTransport) -> None:
        """Bind the transports.

        Args:
            settings: Server settings (SSH defaults).
            pool: The SSH connection pool.
            local: The local transport.
        """
        self._settings = settings
        self.pool = pool
        self.local = local

    def _known_hosts_file(self) -> Path | None:
        configured = self._settings.ssh_known_hosts_file
        if configured is not None:
            return configured.expanduser()
        default = Path("~/.ssh/known_hosts").expanduser()
        return default if default.exists() else None

    def _key_files(self, key_file: str | None) -> tuple[Path, ...]:
        if key_file:
            return (Path(key_file).expanduser(),)
        if self._settings.ssh_key_file is not None:
            return (self._settings.ssh_key_file.expanduser(),)
        return ()

    def ssh_target(
        self, host: HostSnapshot, inventory: Mapping[str, HostSnapshot] | None = None
    ) -> SshTarget:
        """Describe how to reach a host over SSH, jump hosts included.

        Args:
            host: The host.
            inventory: Other hosts by name, so a ProxyJump hop may name one of them.

        Returns:
            The SSH target.

        Raises:
            ValueError: When the ProxyJump chain is too long.
        """
        jumps: list[SshTarget] = []
        for hop in (host.proxy_jump or "").split(","):
            if not hop:
                continue
            if len(jumps) >= _MAX_JUMPS:
                msg = f"host {host.name}: more than {_MAX_JUMPS} jump hosts"
                raise ValueError(msg)
            user, name, port = _split_hop(hop.strip())
            known = (inventory or {}).get(name)
            if known is not None and known.name != host.name:
                base = self._direct_target(known)
                jumps.append(replace(base, port=port or base.port, user=user or base.user))
            else:
                jumps.append(
                    SshTarget(
                        name=name,
                        address=name,
                        port=port or 22,
                        user=user,
                        key_files=self._key_files(None),
                        known_hosts_file=self._known_hosts_file(),
                        connect_timeout=self._settings.ssh_connect_timeout,
                    )
                )
        return replace(self._direct_target(host), jump=tuple(jumps))

    def _direct_target(self, host: HostSnapshot) -> SshTarget:
        return SshTarget(
            name=host.name,
            address=host.address,
            port=host.port,
            user=host.user,
            key_files=self._key_files(host.key_file),
            known_host_keys=(host.host_key,) if host.host_key else (),
            known_hosts_file=self._known_hosts_file(),
            trust_on_first_use=host.trust_on_first_use and not host.host_key,
            connect_timeout=self._settings.ssh_connect_timeout,
        )

    def for_host(
        self, host: HostSnapshot, inventory: Mapping[str, HostSnapshot] | None = None
    ) -> Transport:
        """Return the transport that reaches ``host``.

        Args:
            host: The host.
            inventory: Other hosts by name (for ProxyJump hops).

        Returns:
            The local transport or an SSH transport from the pool.
        """
        if host.transport == "local":
            return self.local
        return self.pool.transport(self.ssh_target(host, inventory))

    async def close(self) -> None:
        """Close every pooled SSH connection."""
        await self.pool.close()
