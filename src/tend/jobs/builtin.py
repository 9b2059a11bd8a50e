"""The job kinds tend ships: fleet runs, approval expiry, and a no-op for tests and benchmarks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tend.auth.models import Role, User
from tend.execution.approvals import expire_stale
from tend.execution.policy import Risk
from tend.execution.schemas import HostRunResult, RunRequest
from tend.execution.service import Caller
from tend.execution.targets import HostSnapshot
from tend.jobs.kinds import JobContext, job_kind
from tend.jobs.models import JobEvent


@job_kind("noop", idempotent=True, description="does nothing (tests, benchmarks)", api=True)
async def noop(ctx: JobContext) -> dict[str, Any]:
    """Return at once."""
    return {}


@job_kind("approvals.expire", idempotent=True, description="expire stale approvals", api=True)
async def expire_approvals(ctx: JobContext) -> dict[str, Any]:
    """Mark pending approvals past their expiry as expired (and audit each)."""
    return {"expired": await expire_stale(ctx.app.execution)}


async def _caller(ctx: JobContext) -> Caller:
    # The requester's role is re-read: a user disabled or demoted meanwhile loses the job.
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


async def _started_hosts(ctx: JobContext) -> set[str]:
    async with ctx.app.database.session() as session:
        rows = await session.execute(
            select(JobEvent.data).where(
                JobEvent.job_id == ctx.job_id, JobEvent.type == "host_started"
            )
        )
        return {str(data["host"]) for (data,) in rows}


# Retrying is safe: a host is marked started (durably) before it runs, and a later attempt
# never runs a marked host again, so a command's side effect happens at most once per host.
@job_kind("run", idempotent=True, description="run one read-only argv on hosts")
async def run(ctx: JobContext) -> dict[str, Any]:
    """Run a ``read`` argv through the execution path, reporting each host as it finishes."""
    execution = ctx.app.execution
    caller = await _caller(ctx)
    request = RunRequest.model_validate(ctx.params["request"])
    hosts, verdict = await execution.prepare(caller, request)
    if verdict.decision.risk is not Risk.READ:
        msg = "background runs are for read commands; changes go through approvals"
        raise PermissionError(msg)
    results: list[HostRunResult] = []
    total = len(hosts)
    started = await _started_hosts(ctx)

    async def before_host(host: HostSnapshot) -> HostRunResult | None:
        if host.name in started:
            return HostRunResult(
                host=host.name,
                status="error",
                error_kind="interrupted",
                error=f"{host.name}: started by an earlier attempt that died; not run again",
            )
        await ctx.emit("host_started", {"host": host.name})
        return None

    await ctx.progress(0.0, f"0/{total} hosts")
    async for result in execution.stream(
        caller,
        request.argv,
        hosts,
        request.timeout,
        verdict,
        run_id=ctx.job_id,
        before_host=before_host,
    ):
        results.append(result)
        ctx.partial["results"] = [r.model_dump(mode="json") for r in results]
        await ctx.emit("host", result.model_dump(mode="json"))
        await ctx.progress(len(results) / total, f"{len(results)}/{total} hosts")
    results.sort(key=lambda r: r.host)
    return {
        "run_id": ctx.job_id,
        "ok": all(r.status == "ok" for r in results),
        "results": [r.model_dump(mode="json") for r in results],
    }
