"""Approvals, enforced by the server: a ``change`` waits for a human; approved argv runs once.

State machine: ``pending`` -> ``approved`` -> ``executed``; ``pending`` -> ``denied``;
``pending`` -> ``expired``. Transitions out of ``pending`` are single conditional UPDATEs, so two
approvers racing cannot both run the command, and an expired request can never run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from tend.auth.models import Role
from tend.db import utcnow
from tend.errors import Conflict, Forbidden, NotFound
from tend.execution.audit import AuditEntry
from tend.execution.models import Approval
from tend.execution.policy import Risk
from tend.execution.schemas import (
    ApprovalOutcome,
    ApprovalPending,
    ApprovalPublic,
    HostRunResult,
    RunRequest,
    RunResponse,
)
from tend.execution.targets import HostSnapshot, hosts_by_name

if TYPE_CHECKING:
    from tend.execution.service import Caller, ExecutionService, Verdict

logger = logging.getLogger("tend.execution")


async def create_approval(
    service: ExecutionService,
    caller: Caller,
    request: RunRequest,
    hosts: list[HostSnapshot],
    verdict: Verdict,
) -> ApprovalPending:
    """Record a pending approval for a change request.

    Args:
        service: The execution service.
        caller: The requester.
        request: The run request.
        hosts: The resolved hosts (exactly these will run it).
        verdict: The policy verdict (``change``).

    Returns:
        The pending approval.
    """
    now = utcnow()
    approval = Approval(
        id=uuid.uuid4().hex,
        requester_id=caller.user_id,
        requester=caller.username,
        argv=list(request.argv),
        targets=list(request.targets),
        hosts=[h.name for h in hosts],
        reason=request.reason,
        risk=verdict.decision.risk.value,
        policy_reason=verdict.decision.reason,
        four_eyes=verdict.four_eyes,
        timeout=request.timeout,
        status="pending",
        created_at=now,
        expires_at=now + timedelta(seconds=service.settings.approval_ttl),
    )
    async with service.database.session() as session:
        session.add(approval)
    await service.audit.append(
        AuditEntry(
            event="approval_requested",
            actor=caller.username,
            actor_role=caller.role.value,
            argv=request.argv,
            risk=approval.risk,
            detail=f"hosts={','.join(approval.hosts)} reason={request.reason or '-'}",
            approval_id=approval.id,
        )
    )
    return ApprovalPending(
        approval_id=approval.id,
        risk=Risk(approval.risk),
        reason=approval.policy_reason,
        hosts=approval.hosts,
        four_eyes=approval.four_eyes,
        expires_at=approval.expires_at,
    )


async def expire_stale(service: ExecutionService) -> int:
    """Mark pending approvals past their expiry as ``expired`` and record each in the audit log.

    Args:
        service: The execution service.

    Returns:
        How many expired now.
    """
    now = utcnow()
    async with service.database.session() as session:
        stale = [
            (approval_id, argv, risk)
            for approval_id, argv, risk in await session.execute(
                update(Approval)
                .where(Approval.status == "pending", Approval.expires_at <= now)
                .values(status="expired", decided_at=now, decided_by="tend")
                .returning(Approval.id, Approval.argv, Approval.risk)
            )
        ]
    if stale:
        await service.audit.append_many(
            [
                AuditEntry(
                    event="approval_expired",
                    actor="tend",
                    argv=argv,
                    risk=risk,
                    approval_id=approval_id,
                )
                for approval_id, argv, risk in stale
            ]
        )
    return len(stale)


async def list_approvals(
    service: ExecutionService, *, status: str | None = None, limit: int = 100
) -> list[ApprovalPublic]:
    """List approvals newest first (expiring stale ones first).

    Args:
        service: The execution service.
        status: Only this state.
        limit: At most this many.

    Returns:
        The approvals.
    """
    await expire_stale(service)
    query = select(Approval).order_by(Approval.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(Approval.status == status)
    async with service.database.session() as session:
        rows = (await session.execute(query)).scalars()
        return [ApprovalPublic.model_validate(a) for a in rows]


async def get_approval(service: ExecutionService, approval_id: str) -> ApprovalPublic:
    """Return one approval.

    Raises:
        NotFound: When there is no such approval.
    """
    await expire_stale(service)
    async with service.database.session() as session:
        approval = await session.get(Approval, approval_id)
        if approval is None:
            raise NotFound(f"approval {approval_id} not found")
        return ApprovalPublic.model_validate(approval)


async def _decide(
    service: ExecutionService, caller: Caller, approval_id: str, status: str, note: str | None
) -> Approval:
    if not caller.role.allows(Role.OPERATOR):
        raise Forbidden("approving or denying requires role operator or higher")
    await expire_stale(service)
    now = utcnow()
    async with service.database.session() as session:
        approval = await session.get(Approval, approval_id)
        if approval is None:
            raise NotFound(f"approval {approval_id} not found")
        if approval.status != "pending":
            raise Conflict(f"approval {approval_id} is already {approval.status}")
        if approval.four_eyes and approval.requester_id == caller.user_id:
            raise Forbidden(
                "four-eyes rule: a change on these hosts needs an approver other than the requester"
            )
        changed = await session.execute(
            update(Approval)
            .where(
                Approval.id == approval_id,
                Approval.status == "pending",
                Approval.expires_at > now,
            )
            .values(status=status, decided_by=caller.username, decided_at=now, decision_note=note)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"approval {approval_id} was decided or expired meanwhile")
        await session.refresh(approval)
        return approval


async def _audit_decision(
    service: ExecutionService, caller: Caller, approval: Approval, event: str, note: str | None
) -> None:
    await service.audit.append(
        AuditEntry(
            event=event,
            actor=caller.username,
            actor_role=caller.role.value,
            argv=approval.argv,
            risk=approval.risk,
            detail=note,
            approval_id=approval.id,
        )
    )


async def deny(
    service: ExecutionService, caller: Caller, approval_id: str, note: str | None
) -> ApprovalOutcome:
    """Deny a pending approval.

    Raises:
        NotFound: Unknown approval.
        Conflict: Already decided or expired.
    """
    approval = await _decide(service, caller, approval_id, "denied", note)
    await _audit_decision(service, caller, approval, "approval_denied", note)
    outcome = ApprovalOutcome(approval=ApprovalPublic.model_validate(approval))
    return await _decided(service, outcome)


async def approve(
    service: ExecutionService, caller: Caller, approval_id: str, note: str | None
) -> ApprovalOutcome:
    """Approve a pending change and run exactly its argv on exactly its hosts, once.

    The policy is evaluated again first: a command the rules forbid by now does not run.

    Raises:
        NotFound: Unknown approval.
        Conflict: Already decided or expired.
        Forbidden: Four-eyes rule, or the caller is a viewer.
    """
    approval = await _decide(service, caller, approval_id, "approved", note)
    await _audit_decision(service, caller, approval, "approval_granted", note)
    async with service.database.session() as session:
        found = await hosts_by_name(session, approval.hosts)
    hosts = [found[name] for name in approval.hosts if name in found]
    verdict = service.judge(approval.argv, caller.role, hosts)
    run: RunResponse | None = None
    if verdict.decision.risk is Risk.FORBIDDEN:
        await service.audit.append(
            AuditEntry(
                event="refused",
                actor=caller.username,
                argv=approval.argv,
                risk=Risk.FORBIDDEN.value,
                detail=verdict.decision.reason,
                approval_id=approval.id,
            )
        )
    else:
        run = await service.execute(
            caller, approval.argv, hosts, approval.timeout, verdict, approval_id=approval.id
        )
        run.results.extend(_missing_hosts(approval.hosts, found))
        run.ok = run.ok and len(hosts) == len(approval.hosts)
    async with service.database.session() as session:
        row = await session.get(Approval, approval.id)
        assert row is not None
        row.status = "executed"
        row.run_id = run.run_id if run else None
        row.results = [
            r.model_dump(exclude={"stdout", "stderr"}) for r in (run.results if run else [])
        ]
        if run is None:
            row.decision_note = f"{note or ''} (not run: {verdict.decision.reason})".strip()
        await session.flush()
        public = ApprovalPublic.model_validate(row)
    return await _decided(service, ApprovalOutcome(approval=public, run=run))


async def _decided(service: ExecutionService, outcome: ApprovalOutcome) -> ApprovalOutcome:
    """Tell the decision hooks (a failing hook is logged: the decision stands)."""
    for hook in service.decision_hooks:
        try:
            await hook(outcome)
        except Exception:  # a hook must never turn a made decision into an error
            logger.exception("approval decision hook failed")
    return outcome


def _missing_hosts(names: list[str], found: dict[str, HostSnapshot]) -> list[HostRunResult]:
    return [
        HostRunResult(
            host=name,
            status="error",
            error_kind="other",
            error=f"{name}: removed from the inventory since the request",
        )
        for name in names
        if name not in found
    ]
