"""The ``run`` job: one read-only argv on hosts, optionally split into parts across workers.

Every host is marked started (durably) before it runs and a later attempt never runs a marked
host again, so the job is safe to retry after a crash: a command's side effect happens at most
once per host. With Celery, a run over many hosts becomes part jobs (routed by host tag) that
workers run in parallel; the parent collects their results.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import defaultdict
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy import select

from tend.auth.models import Role, User
from tend.errors import Conflict, NotFound
from tend.execution.policy import Risk
from tend.execution.schemas import HostRunResult, RunRequest
from tend.execution.service import Caller, Verdict
from tend.execution.targets import HostSnapshot
from tend.jobs.kinds import JobContext, job_kind
from tend.jobs.models import FINISHED_STATES, Job, JobEvent
from tend.settings import Settings

_COLLECT_POLL = 0.25
# Parents waiting for their parts hold a worker slot each; capping them per process (at half
# the slots) keeps parts from starving behind parents. Over the cap a run executes inline.
_waiting_parents: dict[int, asyncio.Semaphore] = {}


def route_queue(settings: Settings, host: HostSnapshot) -> str:
    """The queue for a host: the first of its tags with a route, else ``default``."""
    for tag in host.tags:
        if tag in settings.queue_routes:
            return settings.queue_routes[tag]
    return "default"


def queue_for(settings: Settings, hosts: list[HostSnapshot]) -> str:
    """One queue for a set of hosts: their common route, else ``default``."""
    queues = {route_queue(settings, h) for h in hosts}
    return queues.pop() if len(queues) == 1 else "default"


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


def _summary(job_id: str, results: list[HostRunResult]) -> dict[str, Any]:
    results.sort(key=lambda r: r.host)
    return {
        "run_id": job_id,
        "ok": all(r.status == "ok" for r in results),
        "results": [r.model_dump(mode="json") for r in results],
    }


@job_kind("run", idempotent=True, description="run one read-only argv on hosts")
async def run(ctx: JobContext) -> dict[str, Any]:
    """Run a ``read`` argv through the execution path, reporting each host as it finishes."""
    execution = ctx.app.execution
    settings = ctx.app.settings
    caller = await _caller(ctx)
    request = RunRequest.model_validate(ctx.params["request"])
    hosts, verdict = await execution.prepare(caller, request)
    if verdict.decision.risk is not Risk.READ:
        msg = "background runs are for read commands; changes go through approvals"
        raise PermissionError(msg)
    splittable = (
        settings.jobs == "celery"
        and "part_of" not in ctx.params
        and len(hosts) > settings.run_part_hosts
    )
    if splittable:
        gate = _waiting_parents.setdefault(
            id(ctx.app), asyncio.Semaphore(max(1, settings.jobs_concurrency // 2))
        )
        if not gate.locked():
            async with gate:
                return await _split(ctx, caller, request, hosts)
    return await _run_inline(ctx, caller, request, hosts, verdict)


async def _run_inline(
    ctx: JobContext,
    caller: Caller,
    request: RunRequest,
    hosts: list[HostSnapshot],
    verdict: Verdict,
) -> dict[str, Any]:
    results: list[HostRunResult] = []
    total = len(hosts)
    started = await _started_hosts(ctx)
    running: set[str] = set()

    async def before_host(host: HostSnapshot) -> HostRunResult | None:
        if host.name in started:
            return HostRunResult(
                host=host.name,
                status="error",
                error_kind="interrupted",
                error=f"{host.name}: started by an earlier attempt that died; not run again",
            )
        await ctx.emit("host_started", {"host": host.name})
        running.add(host.name)
        return None

    await ctx.progress(0.0, f"0/{total} hosts")
    stream = ctx.app.execution.stream(
        caller,
        request.argv,
        hosts,
        request.timeout,
        verdict,
        run_id=ctx.job_id,
        before_host=before_host,
    )
    try:
        async for result in stream:
            results.append(result)
            ctx.partial["results"] = [r.model_dump(mode="json") for r in results]
            await ctx.emit("host", result.model_dump(mode="json"))
            await ctx.progress(len(results) / total, f"{len(results)}/{total} hosts")
    except asyncio.CancelledError:
        # The cancelled job's result says which hosts finished and which were stopped.
        finished = {r.host for r in results}
        ctx.partial.update(_summary(ctx.job_id, results), ok=False)
        ctx.partial["cancelled_hosts"] = sorted(running - finished)
        ctx.partial["not_started_hosts"] = sorted(
            h.name for h in hosts if h.name not in finished and h.name not in running
        )
        raise
    finally:
        # A cancel arriving between hosts must still stop the hosts still running.
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()
    return _summary(ctx.job_id, results)


async def _split(
    ctx: JobContext, caller: Caller, request: RunRequest, hosts: list[HostSnapshot]
) -> dict[str, Any]:
    """Enqueue part jobs per route and size, then collect their results as they finish."""
    settings = ctx.app.settings
    jobs = ctx.app.jobs
    by_queue: dict[str, list[HostSnapshot]] = defaultdict(list)
    for host in hosts:
        by_queue[route_queue(settings, host)].append(host)
    parts: list[str] = []
    for queue, members in sorted(by_queue.items()):
        count = math.ceil(len(members) / settings.run_part_hosts)
        size = math.ceil(len(members) / count)
        for index in range(count):
            chunk = members[index * size : (index + 1) * size]
            part_request = request.model_copy(update={"targets": [h.name for h in chunk]})
            part = await jobs.enqueue(
                "run",
                {
                    **ctx.params,
                    "request": part_request.model_dump(mode="json", exclude={"run_async"}),
                    "part_of": ctx.job_id,
                },
                requested_by=caller.username,
                requester_id=caller.user_id,
                # A retried parent finds its parts again instead of enqueueing new ones.
                idempotency_key=f"{ctx.job_id}:part:{queue}:{index}",
                queue=queue,
            )
            parts.append(part.id)
    await ctx.emit("split", {"parts": parts})
    results: list[HostRunResult] = []
    pending = set(parts)
    try:
        while pending:
            async with ctx.app.database.session() as session:
                rows = list(
                    (
                        await session.execute(
                            select(Job.id, Job.state, Job.result, Job.error).where(
                                Job.id.in_(pending), Job.state.in_(FINISHED_STATES)
                            )
                        )
                    ).all()
                )
            for part_id, state, result, error in rows:
                pending.discard(part_id)
                for item in (result or {}).get("results", []):
                    host_result = HostRunResult.model_validate(item)
                    results.append(host_result)
                    await ctx.emit("host", host_result.model_dump(mode="json"))
                if state != "succeeded":
                    await ctx.emit("part_failed", {"part": part_id, "state": state, "error": error})
            await ctx.progress(len(results) / len(hosts), f"{len(results)}/{len(hosts)} hosts")
            if pending:
                await asyncio.sleep(_COLLECT_POLL)
    except asyncio.CancelledError:
        for part_id in pending:
            with contextlib.suppress(Conflict, NotFound):  # it finished meanwhile: fine
                await jobs.cancel(part_id, by=caller.username)
        raise
    ctx.partial["results"] = [r.model_dump(mode="json") for r in results]
    reached = {r.host for r in results}
    results.extend(
        HostRunResult(
            host=h.name,
            status="error",
            error_kind="other",
            error=f"{h.name}: its part job did not finish",
        )
        for h in hosts
        if h.name not in reached
    )
    return _summary(ctx.job_id, results)
