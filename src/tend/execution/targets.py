"""Resolve run targets (host names, ``tag:NAME``, ``all``) to inventory hosts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tend.errors import NotFound
from tend.hosts.models import Host, HostTag


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """The inventory fields execution needs, detached from any database session."""

    name: str
    address: str
    port: int
    user: str | None
    transport: str
    tags: tuple[str, ...]
    key_file: str | None
    proxy_jump: str | None
    trust_on_first_use: bool
    host_key: str | None

    @classmethod
    def of(cls, host: Host) -> HostSnapshot:
        """Snapshot an ORM host."""
        return cls(
            name=host.name,
            address=host.address,
            port=host.port,
            user=host.user,
            transport=host.transport,
            tags=tuple(host.tags),
            key_file=host.key_file,
            proxy_jump=host.proxy_jump,
            trust_on_first_use=host.trust_on_first_use,
            host_key=host.host_key,
        )


async def resolve_targets(session: AsyncSession, targets: Sequence[str]) -> list[HostSnapshot]:
    """Turn selectors into hosts, in name order, each once.

    Args:
        session: Database session.
        targets: Host names, ``tag:NAME`` or ``all``.

    Returns:
        The selected hosts.

    Raises:
        NotFound: When a named host does not exist or a tag selects nothing.
    """
    names = {t for t in targets if t != "all" and not t.startswith("tag:")}
    tags = {t.removeprefix("tag:") for t in targets if t.startswith("tag:")}
    query = select(Host).order_by(Host.name)
    if "all" not in targets:
        tagged = select(HostTag.host_id).where(HostTag.tag.in_(tags))
        query = query.where(Host.name.in_(names) | Host.id.in_(tagged))
    hosts = list((await session.execute(query)).scalars())
    missing = sorted(names - {h.name for h in hosts})
    if missing:
        raise NotFound(f"unknown host(s): {', '.join(missing)}")
    empty = sorted(tag for tag in tags if not any(tag in h.tags for h in hosts))
    if empty:
        raise NotFound(f"no host carries tag(s): {', '.join(empty)}")
    if not hosts:
        raise NotFound("no hosts in the inventory")
    return [HostSnapshot.of(h) for h in hosts]


async def hosts_by_name(session: AsyncSession, names: Sequence[str]) -> dict[str, HostSnapshot]:
    """Load hosts by name (missing names are simply absent from the result)."""
    hosts = (await session.execute(select(Host).where(Host.name.in_(list(names))))).scalars()
    return {h.name: HostSnapshot.of(h) for h in hosts}
