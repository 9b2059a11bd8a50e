"""HTTP endpoints of background jobs: list, show, follow (SSE), cancel, enqueue (admin)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, status
from fastapi.responses import StreamingResponse

from tend.auth.deps import Admin, Viewer
from tend.auth.models import Role
from tend.auth.service import Principal
from tend.context import ContextDep
from tend.errors import NotFound, ValidationFailed
from tend.jobs.kinds import KINDS
from tend.jobs.schemas import JobAccepted, JobCreate, JobPublic, JobState
from tend.jobs.service import JobService

router = APIRouter(prefix="/jobs", tags=["jobs"])


def get_jobs(context: ContextDep) -> JobService:
    """Return the job service built in the lifespan."""
    return context.jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]


def _sees_all(principal: Principal) -> bool:
    return principal.role.allows(Role.OPERATOR)


async def _visible(jobs: JobService, job_id: str, principal: Principal) -> JobPublic:
    job = await jobs.get(job_id)
    if not _sees_all(principal) and job.requested_by != principal.user.username:
        raise NotFound(f"job {job_id} not found")
    return job


@router.get("", response_model=list[JobPublic])
async def list_jobs(
    jobs: JobsDep,
    principal: Viewer,
    state: JobState | None = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobPublic]:
    """List jobs newest first (viewers see their own; operators and admins see all)."""
    mine = None if _sees_all(principal) else principal.user.username
    return await jobs.list(state=state, kind=kind, requested_by=mine, limit=limit)


@router.post("", response_model=JobAccepted, status_code=status.HTTP_202_ACCEPTED)
async def create_job(body: JobCreate, jobs: JobsDep, principal: Admin) -> JobAccepted:
    """Enqueue a job of a kind that may be started directly (admin)."""
    known = KINDS.get(body.kind)
    if known is None or not known.api:
        allowed = sorted(k.name for k in KINDS.values() if k.api)
        raise ValidationFailed(f"kind {body.kind!r} cannot be enqueued here; allowed: {allowed}")
    job = await jobs.enqueue(
        body.kind,
        body.params,
        requested_by=principal.user.username,
        requester_id=principal.user.id,
        idempotency_key=body.idempotency_key,
        queue=body.queue,
    )
    return JobAccepted(job_id=job.id, state=job.state)


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: str, jobs: JobsDep, principal: Viewer) -> JobPublic:
    """Show one job with its progress and result."""
    return await _visible(jobs, job_id, principal)


@router.get(
    "/{job_id}/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def job_events(
    job_id: str,
    jobs: JobsDep,
    principal: Viewer,
    after: Annotated[int, Query(ge=0, description="replay events after this seq")] = 0,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Stream the job's events as SSE (replayed, then live) until it finishes."""
    await _visible(jobs, job_id, principal)
    if last_event_id is not None and last_event_id.isdigit():
        after = max(after, int(last_event_id))

    async def stream() -> AsyncIterator[bytes]:
        async for event in jobs.events(job_id, after=after):
            payload = json.dumps(event.data, separators=(",", ":"))
            yield f"id: {event.seq}\nevent: {event.type}\ndata: {payload}\n\n".encode()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.post("/{job_id}/cancel", response_model=JobPublic)
async def cancel_job(job_id: str, jobs: JobsDep, principal: Viewer) -> JobPublic:
    """Cancel a job (its requester, or an operator or admin); 409 when it already finished."""
    await _visible(jobs, job_id, principal)
    return await jobs.cancel(job_id, by=principal.user.username)
