"""The ``diagnose`` job: one host's diagnosis in the background (``"async": true``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tend.auth.models import Role, User
from tend.diagnostics.runner import diagnose
from tend.execution.service import Caller
from tend.jobs.kinds import JobContext, job_kind


async def requester(ctx: JobContext) -> Caller:
    """The user who asked, re-read now: a user disabled or demoted meanwhile loses the job.

    Raises:
        PermissionError: When the user is disabled or gone.
    """
    params = ctx.params
    async with ctx.app.database.session() as session:
        user = (
            await session.execute(select(User).where(User.id == params["requester_id"]))
        ).scalar_one_or_none()
    if user is None or user.disabled:
        msg = "the requesting user is disabled or gone"
        raise PermissionError(msg)
    role = min(Role(user.role), Role(params["role"]), key=lambda r: r.rank)
    return Caller(user_id=user.id, username=user.username, role=role)


@job_kind("diagnose", idempotent=True, description="run the diagnostics analyzers on one host")
async def diagnose_job(ctx: JobContext) -> dict[str, Any]:
    """Diagnose ``params.host`` with ``params.analyzers`` (all when absent); return the report."""
    report = await diagnose(
        ctx.app.execution,
        ctx.params["host"],
        await requester(ctx),
        ctx.params.get("analyzers"),
        progress=ctx.progress,
    )
    return report.model_dump(mode="json")
