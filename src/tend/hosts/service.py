"""Use cases of the hosts inventory."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tend.db import utcnow
from tend.errors import Conflict, NotFound
from tend.hosts.models import Host, HostTag
from tend.hosts.schemas import (
    HostCreate,
    HostImport,
    HostImportResult,
    HostPublic,
    HostUpdate,
    Transport,
)

_PUBLIC_COLUMNS = [getattr(Host, field) for field in HostPublic.model_fields if field != "tags"]


async def list_hosts(
    session: AsyncSession, *, tag: str | None = None, limit: int = 1000, offset: int = 0
) -> list[HostPublic]:
    """List hosts ordered by name, optionally only those carrying a tag.

    The listing is the hottest read of the inventory, so it reads plain rows in one query (the
    page of hosts joined with their tags) instead of building ORM objects.

    Args:
        session: Database session.
        tag: Only hosts with this tag.
        limit: Page size.
        offset: Rows to skip.

    Returns:
        The hosts with their tags.
    """
    page = select(Host.id).order_by(Host.name).limit(limit).offset(offset)
    if tag is not None:
        page = page.where(Host.id.in_(select(HostTag.host_id).where(HostTag.tag == tag)))
    page_ids = page.subquery()
    query = (
        select(Host.id, *_PUBLIC_COLUMNS, HostTag.tag)
        .join(page_ids, page_ids.c.id == Host.id)
        .outerjoin(HostTag, HostTag.host_id == Host.id)
        .order_by(Host.name, HostTag.tag)
    )
    hosts: dict[int, dict[str, Any]] = {}
    for row in (await session.execute(query)).mappings():
        host = hosts.get(row["id"])
        if host is None:
            host = hosts[row["id"]] = {**row, "tags": []}
        if row["tag"] is not None:
            host["tags"].append(row["tag"])
    return [HostPublic.model_validate(host) for host in hosts.values()]


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
        key_file=data.key_file,
        proxy_jump=data.proxy_jump,
        trust_on_first_use=data.trust_on_first_use,
        host_key=data.host_key,
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
    # None clears these optional fields; for the others None means "leave as is".
    clearable = {"user", "key_file", "proxy_jump", "host_key"}
    for field in ("address", "port", "trust_on_first_use", *sorted(clearable)):
        if field in changes and (changes[field] is not None or field in clearable):
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


async def import_hosts(session: AsyncSession, data: HostImport) -> HostImportResult:
    """Create or update many hosts in the caller's transaction (all or nothing).

    Args:
        session: Database session.
        data: The hosts and what to do with names that exist.

    Returns:
        The names created, updated and skipped.

    Raises:
        Conflict: With ``on_conflict="error"``, when a name exists; or duplicate names in the file.
    """
    names = [h.name for h in data.hosts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Conflict(f"the import names these hosts twice: {', '.join(duplicates)}")
    existing = {
        h.name: h
        for h in (await session.execute(select(Host).where(Host.name.in_(names)))).scalars()
    }
    if existing and data.on_conflict == "error":
        raise Conflict(f"host(s) already exist: {', '.join(sorted(existing))}")
    result = HostImportResult(created=[], updated=[], skipped=[])
    for host in data.hosts:
        current = existing.get(host.name)
        if current is None:
            await create_host(session, host)
            result.created.append(host.name)
        elif data.on_conflict == "update":
            changes = HostUpdate.model_validate(
                host.model_dump(exclude={"name"}, exclude_unset=True)
            )
            await update_host(session, current, changes)
            result.updated.append(host.name)
        else:
            result.skipped.append(host.name)
    return result
