"""HTTP endpoints of execution: runs (plain and streamed), policy checks, approvals, audit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from tend.auth.deps import Admin, Operator, Viewer
from tend.auth.service import Principal
from tend.context import ContextDep
from tend.errors import ValidationFailed
from tend.execution import approvals
from tend.execution.schemas import (
    ApprovalDecision,
    ApprovalOutcome,
    ApprovalPending,
    ApprovalPublic,
    AuditRecordPublic,
    AuditVerifyResponse,
    PolicyCheckRequest,
    PolicyDecisionPublic,
    RunEvent,
    RunRequest,
    RunResponse,
)
from tend.execution.service import Caller, ExecutionService, to_public
from tend.jobs.fleet_run import queue_for
from tend.jobs.router import JobsDep
from tend.jobs.schemas import JobAccepted

router = APIRouter(tags=["execution"])


def get_execution(context: ContextDep) -> ExecutionService:
    """Return the execution service built in the lifespan."""
    return context.execution


ExecutionDep = Annotated[ExecutionService, Depends(get_execution)]


def caller_of(principal: Principal) -> Caller:
    """The execution service's view of the authenticated principal."""
    return Caller(user_id=principal.user.id, username=principal.user.username, role=principal.role)


@router.post(
    "/runs",
    response_model=RunResponse,
    responses={
        202: {
            "model": ApprovalPending | JobAccepted,
            "description": "a change waiting for approval, or (async) the background job",
        },
        403: {"description": "forbidden by the policy (PolicyRefused) or by role"},
        404: {"description": "unknown host or tag"},
    },
)
async def create_run(
    body: RunRequest, execution: ExecutionDep, jobs: JobsDep, principal: Viewer
) -> Response:
    """Run argv on hosts: ``read`` runs now (200), ``change`` waits for approval (202).

    With ``"async": true`` a ``read`` becomes a background job instead (202 with ``job_id``).
    """
    caller = caller_of(principal)
    if body.run_async:
        hosts, verdict = await execution.prepare(caller, body)
        if verdict.decision.risk.value == "read":
            job = await jobs.enqueue(
                "run",
                {
                    "request": body.model_dump(mode="json", exclude={"run_async"}),
                    "requester_id": caller.user_id,
                    "role": caller.role.value,
                },
                requested_by=caller.username,
                requester_id=caller.user_id,
                queue=queue_for(execution.settings, hosts),
            )
            accepted = JobAccepted(job_id=job.id, state=job.state)
            return JSONResponse(accepted.model_dump(mode="json"), status_code=202)
        pending = await approvals.create_approval(execution, caller, body, hosts, verdict)
        return JSONResponse(pending.model_dump(mode="json"), status_code=202)
    outcome = await execution.request_run(caller, body)
    if isinstance(outcome, ApprovalPending):
        return JSONResponse(outcome.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    return JSONResponse(outcome.model_dump(mode="json"))


@router.post(
    "/runs/stream",
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "one JSON event per line"},
        202: {"model": ApprovalPending, "description": "a change: waiting for approval"},
    },
)
async def stream_run(
    body: RunRequest, request: Request, execution: ExecutionDep, principal: Viewer
) -> Response:
    """Like ``POST /runs``, but stream NDJSON events as each host finishes (``read`` only)."""
    caller = caller_of(principal)
    hosts, verdict = await execution.prepare(caller, body)
    if verdict.decision.risk.value == "change":
        pending = await approvals.create_approval(execution, caller, body, hosts, verdict)
        return JSONResponse(pending.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)

    async def events() -> AsyncIterator[bytes]:
        run_id = uuid.uuid4().hex
        start = {"hosts": [h.name for h in hosts], "risk": verdict.decision.risk.value}
        yield _line(RunEvent(event="start", run_id=run_id, data=start))
        counts = {"ok": 0, "failed": 0, "timeout": 0, "error": 0}
        async for result in execution.stream(
            caller, body.argv, hosts, body.timeout, verdict, run_id=run_id
        ):
            counts[result.status] += 1
            yield _line(RunEvent(event="host", run_id=run_id, data=result.model_dump(mode="json")))
            if await request.is_disconnected():
                return
        done = {"ok": counts["ok"] == len(hosts), "counts": counts}
        yield _line(RunEvent(event="done", run_id=run_id, data=done))

    return StreamingResponse(events(), media_type="application/x-ndjson")


def _line(event: RunEvent) -> bytes:
    return event.model_dump_json().encode() + b"\n"


@router.post("/policy/check", response_model=PolicyDecisionPublic)
async def check_policy(
    body: PolicyCheckRequest, execution: ExecutionDep, principal: Viewer
) -> PolicyDecisionPublic:
    """Judge an argv (optionally for a host) without running anything."""
    verdict = await execution.check(caller_of(principal), body.argv, body.host)
    return to_public(verdict)


ApprovalState = Literal["pending", "approved", "denied", "expired", "executed"]


@router.get("/approvals", response_model=list[ApprovalPublic])
async def list_approvals(
    execution: ExecutionDep,
    _: Viewer,
    state: Annotated[ApprovalState | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ApprovalPublic]:
    """List approvals, newest first."""
    return await approvals.list_approvals(execution, status=state, limit=limit)


@router.get("/approvals/{approval_id}", response_model=ApprovalPublic)
async def get_approval(approval_id: str, execution: ExecutionDep, _: Viewer) -> ApprovalPublic:
    """Show one approval."""
    return await approvals.get_approval(execution, approval_id)


@router.post("/approvals/{approval_id}/approve", response_model=ApprovalOutcome)
async def approve(
    approval_id: str,
    execution: ExecutionDep,
    principal: Operator,
    body: ApprovalDecision | None = None,
) -> ApprovalOutcome:
    """Approve a pending change; it runs at once and the response carries the results."""
    note = body.note if body else None
    return await approvals.approve(execution, caller_of(principal), approval_id, note)


@router.post("/approvals/{approval_id}/deny", response_model=ApprovalOutcome)
async def deny(
    approval_id: str,
    execution: ExecutionDep,
    principal: Operator,
    body: ApprovalDecision | None = None,
) -> ApprovalOutcome:
    """Deny a pending change."""
    note = body.note if body else None
    return await approvals.deny(execution, caller_of(principal), approval_id, note)


@router.get("/audit", response_model=list[AuditRecordPublic])
async def list_audit(
    execution: ExecutionDep,
    _: Operator,
    host: Annotated[str | None, Query(max_length=63)] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    risk: Annotated[Literal["read", "change", "forbidden"] | None, Query()] = None,
    event: Annotated[str | None, Query(max_length=32)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditRecordPublic]:
    """Audit records newest first, filtered by host, user, risk, event and time."""
    if since is not None and until is not None and since > until:
        raise ValidationFailed("'since' is after 'until'")
    records = await execution.audit.query(
        host=host,
        actor=user,
        risk=risk,
        event=event,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return [AuditRecordPublic.model_validate(r) for r in records]


@router.get("/audit/verify", response_model=AuditVerifyResponse)
async def verify_audit(execution: ExecutionDep, _: Admin) -> AuditVerifyResponse:
    """Check the whole audit chain; ``ok`` is false with the first bad record otherwise."""
    result = await execution.audit.verify()
    return AuditVerifyResponse(
        ok=result.ok, records=result.records, first_bad_id=result.first_bad_id, reason=result.reason
    )
