"""HTTP endpoints of the hosts inventory: viewers read, admins write."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import TypeAdapter

from tend.auth.deps import Admin, Viewer
from tend.context import SessionDep
from tend.hosts import service
from tend.hosts.schemas import HostCreate, HostImport, HostImportResult, HostPublic, HostUpdate

router = APIRouter(prefix="/hosts", tags=["hosts"])

NamePath = Annotated[str, Path(max_length=63, description="host name")]


_HOST_LIST = TypeAdapter(list[HostPublic])


@router.get("", response_model=list[HostPublic])
async def list_hosts(
    session: SessionDep,
    _: Viewer,
    tag: Annotated[str | None, Query(max_length=63, description="only hosts with this tag")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """List hosts ordered by name."""
    hosts = await service.list_hosts(session, tag=tag, limit=limit, offset=offset)
    # Serialised once here; returning models would make FastAPI validate them all again.
    return Response(_HOST_LIST.dump_json(hosts), media_type="application/json")


@router.post("", response_model=HostPublic, status_code=status.HTTP_201_CREATED)
async def create_host(body: HostCreate, session: SessionDep, _: Admin) -> HostPublic:
    """Add a host (admin)."""
    return HostPublic.model_validate(await service.create_host(session, body))


@router.post("/import", response_model=HostImportResult)
async def import_hosts(body: HostImport, session: SessionDep, _: Admin) -> HostImportResult:
    """Add (or update) many hosts at once, all or nothing (admin)."""
    return await service.import_hosts(session, body)


@router.get("/{name}", response_model=HostPublic)
async def get_host(name: NamePath, session: SessionDep, _: Viewer) -> HostPublic:
    """Show one host."""
    return HostPublic.model_validate(await service.get_host(session, name))


@router.patch("/{name}", response_model=HostPublic)
async def update_host(
    name: NamePath, body: HostUpdate, session: SessionDep, _: Admin
) -> HostPublic:
    """Change a host (admin)."""
    host = await service.get_host(session, name)
    return HostPublic.model_validate(await service.update_host(session, host, body))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_host(name: NamePath, session: SessionDep, _: Admin) -> None:
    """Remove a host (admin)."""
    await service.delete_host(session, await service.get_host(session, name))
