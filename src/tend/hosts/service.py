"""Use cases of the hosts inventory."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tend.db import utcnow
from tend.errors import Conflict, NotFound
from tend.hosts.models import Host, HostTag
from tend.hosts.schemas import HostCreate, HostUpdate, Transport


async def list_hosts(
    session: AsyncSession, *, tag: str | None = None, limit: int = 1000, offset: int = 0
) -> list[Host]:
    """List hosts ordered by name, optionally only those carrying a tag.

    Args:
        session: Database session.
        tag: Only hosts with this tag.
        limit: Page size.
        offset: Rows to skip.

    Returns:
        The hosts with their tags loaded.
    """
    query = select(Host).order_by(Host.name).limit(limit).offset(offset)
    if tag is not None:
        query = query.where(Host.id.in_(select(HostTag.host_id).where(HostTag.tag == tag)))
    return list((await session.execute(query)).scalars())


async def find_host(session: AsyncSession, name: str) -> Host | None:
    """Look a host up by name."""
    return (await session.execute(select(Host).where(Host.name == name))).scalar_one_or_none()


async def get_host(session: AsyncSession, name: str) -> Host:
    """Return a host or raise ``NotFound``.

    Args:
        session: Database session.
        name: The host name.

    Returns:
        The host.

    Raises:
        NotFound: When there is no such host.
    """
    host = await find_host(session, name)
    if host is None:
        raise NotFound(f"host {name!r} not found")
    return host


async def create_host(session: AsyncSession, data: HostCreate) -> Host:
    """Add a host.

    Args:
        session: Database session.
        data: The validated host.

    Returns:
        The new host.

    Raises:
        Conflict: When the name is taken.
    """
    if await find_host(session, data.name) is not None:
        raise Conflict(f"host {data.name!r} already exists")
    host = Host(
        name=data.name,
        address=data.address or "localhost",
        port=data.port,
        user=data.user,
        transport=data.transport.value,
        tag_rows=[HostTag(tag=t) for t in data.tags],
    )
    session.add(host)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"host {data.name!r} already exists") from exc
    return host


async def update_host(session: AsyncSession, host: Host, data: HostUpdate) -> Host:
    """Apply the fields present in ``data`` to a host.

    Args:
        session: Database session.
        host: The host.
        data: The changes (only fields the client sent are applied).

    Returns:
        The updated host.
    """
    changes = data.model_dump(exclude_unset=True)
    for field in ("address", "port", "user"):
        if field in changes and (changes[field] is not None or field == "user"):
            setattr(host, field, changes[field])
    if changes.get("transport") is not None:
        host.transport = Transport(changes["transport"]).value
    if changes.get("tags") is not None:
        wanted = set(changes["tags"])
        host.tag_rows = [row for row in host.tag_rows if row.tag in wanted] + [
            HostTag(tag=t) for t in sorted(wanted - set(host.tags))
        ]
    host.updated_at = utcnow()
    await session.flush()
    await session.refresh(host, ["tag_rows"])
    return host


async def delete_host(session: AsyncSession, host: Host) -> None:
    """Remove a host from the inventory.

    Args:
        session: Database session.
        host: The host.
    """
    await session.delete(host)
    await session.flush()
