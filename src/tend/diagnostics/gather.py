"""Run probes on a host through the execution path: policy-checked, audited, never a shell.

Each probe is judged by the policy for this host and caller; only ``read`` probes run, the
rest are reported as refused. Probes run concurrently over the host's one pooled connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from tend.diagnostics.findings import Probe, ProbeOutput, ProbeStatus
from tend.execution.policy import Risk
from tend.execution.schemas import HostRunResult
from tend.execution.service import Caller, ExecutionService
from tend.execution.targets import HostSnapshot

CONNECTION_FAILURES = frozenset(
    {"dns", "refused", "timeout", "auth", "host_key_unknown", "host_key_changed", "connection_lost"}
)


def _missing(result: HostRunResult) -> bool:
    text = f"{result.error or ''}\n{result.stderr}"
    if result.status == "error" and "executable not found" in text:
        return True
    return result.exit_code == 127 and ("not found" in text or "No such file or directory" in text)


def output_of(probe: Probe, result: HostRunResult, started: float) -> ProbeOutput:
    """Turn a host's run result into a probe output."""
    status: ProbeStatus = "missing" if _missing(result) else result.status
    return ProbeOutput(
        probe=probe,
        status=status,
        stdout=result.stdout,
        stderr=result.stderr,
        exit_code=result.exit_code,
        truncated=result.stdout_truncated,
        error=result.error,
        error_kind=result.error_kind,
        duration=result.duration,
        started_at=started,
        finished_at=time.time(),
    )


def unreachable(output: ProbeOutput) -> bool:
    """Whether a probe failed because the host could not be reached at all."""
    return output.error_kind in CONNECTION_FAILURES


async def gather(
    execution: ExecutionService,
    caller: Caller,
    host: HostSnapshot,
    probes: Sequence[Probe],
    *,
    run_id: str,
    concurrency: int = 6,
) -> dict[str, ProbeOutput]:
    """Run every probe once (by id) and return the outputs by probe id.

    Args:
        execution: The execution service (policy, audit, transports).
        caller: Whose permissions the probes run with.
        host: The host.
        probes: The probes; later ones with an id already seen are ignored.
        run_id: Groups the probes' audit records under one run id.
        concurrency: Probes in flight at once.

    Returns:
        Outputs by probe id.
    """
    unique: dict[str, Probe] = {}
    for probe in probes:
        unique.setdefault(probe.id, probe)
    gate = asyncio.Semaphore(concurrency)

    async def one(probe: Probe) -> ProbeOutput:
        verdict = execution.judge(probe.argv, caller.role, [host])
        if verdict.decision.risk is not Risk.READ:
            return ProbeOutput(
                probe,
                "refused",
                error=f"the policy says {verdict.decision.risk.value}: {verdict.decision.reason}",
            )
        async with gate:
            started = time.time()
            results = [
                result
                async for result in execution.stream(
                    caller, probe.argv, [host], probe.timeout, verdict, run_id=run_id
                )
            ]
        return output_of(probe, results[0], started)

    # Start the slow ones (the CPU sample, package managers) first: they set the total time.
    ordered = sorted(unique.values(), key=lambda probe: -probe.timeout)
    outputs = await asyncio.gather(*(one(probe) for probe in ordered))
    return {output.probe.id: output for output in outputs}
