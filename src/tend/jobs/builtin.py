"""The job kinds tend ships: approval expiry and a no-op (fleet runs live in ``fleet_run``)."""

from __future__ import annotations

from typing import Any

from tend.execution.approvals import expire_stale
from tend.jobs import fleet_run  # noqa: F401 - registers the run kind
from tend.jobs.kinds import JobContext, job_kind


@job_kind("noop", idempotent=True, description="does nothing (tests, benchmarks)", api=True)
async def noop(ctx: JobContext) -> dict[str, Any]:
    """Return at once."""
    return {}


@job_kind("approvals.expire", idempotent=True, description="expire stale approvals", api=True)
async def expire_approvals(ctx: JobContext) -> dict[str, Any]:
    """Mark pending approvals past their expiry as expired (and audit each)."""
    return {"expired": await expire_stale(ctx.app.execution)}
