"""Job kinds of the job tests, registered in the API process and (``TEND_JOB_MODULES``) in workers.

``test.work`` (idempotent) and ``test.once`` (not idempotent) share one handler driven by params:

* ``marker``: a file to append ``<job id> <pid>`` to when the handler starts (its side effect);
* ``gate``: a file to wait for after reporting half-way progress (the test opens it);
* ``fail``: a message to fail with (:class:`WorkFailed`) once the gate is open;
* ``echo``: a value returned in the result.

The result is ``{"echo": ..., "pid": <the pid that ran the handler>}``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from tend.jobs.kinds import JobContext, job_kind

MODULE = __name__
GATE_POLL = 0.05


class WorkFailed(RuntimeError):
    """The failure a ``fail`` param asks for."""


def _append(path: Path, line: str) -> None:
    with path.open("a") as out:
        out.write(line)


async def work(ctx: JobContext) -> dict[str, Any]:
    """Append to the marker, report progress, wait for the gate, then succeed or fail."""
    params = ctx.params
    if params.get("marker"):
        await asyncio.to_thread(_append, Path(params["marker"]), f"{ctx.job_id} {os.getpid()}\n")
    await ctx.progress(0.5, "half way")
    if params.get("gate"):
        gate = Path(params["gate"])
        while True:  # a file the test creates: another process may run this job
            if await asyncio.to_thread(gate.exists):
                break
            await asyncio.sleep(GATE_POLL)
    if params.get("fail"):
        raise WorkFailed(params["fail"])
    await ctx.progress(0.9, "almost done")
    return {"echo": params.get("echo"), "pid": os.getpid()}


job_kind("test.work", idempotent=True, description="test work (idempotent)", api=True)(work)
job_kind("test.once", idempotent=False, description="test work that must not rerun", api=True)(work)
