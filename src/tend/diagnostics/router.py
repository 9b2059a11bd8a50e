"""HTTP endpoints of diagnostics: diagnose a host, list the analyzers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from tend.auth.deps import Viewer
from tend.diagnostics.analyzers import describe
from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.runner import diagnose, select_analyzers
from tend.diagnostics.schemas import AnalyzerPublic, DiagnoseRequest, DiagnosisReport
from tend.execution.router import ExecutionDep, caller_of
from tend.execution.targets import resolve_targets
from tend.jobs.fleet_run import route_queue
from tend.jobs.router import JobsDep
from tend.jobs.schemas import JobAccepted

router = APIRouter(tags=["diagnostics"])

HostName = Annotated[str, Path(max_length=63)]


@router.post(
    "/hosts/{name}/diagnose",
    response_model=DiagnosisReport,
    responses={
        202: {"model": JobAccepted, "description": "(async) the background job"},
        404: {"description": "unknown host"},
        422: {"description": "unknown analyzer (the valid ids are listed)"},
    },
)
async def diagnose_host(
    name: HostName,
    execution: ExecutionDep,
    jobs: JobsDep,
    principal: Viewer,
    body: DiagnoseRequest | None = None,
) -> Response:
    """Run the analyzers on a host: findings with evidence, most severe first.

    Every command is read-only, judged by the policy and audited like ``POST /runs`` (which
    viewers may use for reads). Next steps are proposals with the policy's verdict, never run.
    With ``"async": true`` the diagnosis is a ``diagnose`` job (202 with its id).
    """
    request = body or DiagnoseRequest()
    select_analyzers(request.analyzers)
    caller = caller_of(principal)
    async with execution.database.session() as session:
        [host] = await resolve_targets(session, [name])
    if request.run_async:
        job = await jobs.enqueue(
            "diagnose",
            {
                "host": host.name,
                "analyzers": request.analyzers,
                "requester_id": caller.user_id,
                "role": caller.role.value,
            },
            requested_by=caller.username,
            requester_id=caller.user_id,
            queue=route_queue(execution.settings, host),
        )
        accepted = JobAccepted(job_id=job.id, state=job.state)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)
    report = await diagnose(execution, host, caller, request.analyzers)
    return JSONResponse(report.model_dump(mode="json"))


@router.get("/diagnostics/analyzers", response_model=list[AnalyzerPublic])
async def list_analyzers(execution: ExecutionDep, _: Viewer) -> list[AnalyzerPublic]:
    """The registered analyzers: id, what they look for, and the commands they run first."""
    config = DiagnosticsConfig.from_settings(execution.settings)
    return [
        AnalyzerPublic(
            id=spec.id,
            description=spec.description,
            commands=[list(p.argv) for p in spec.probes(config)],
            baseline=spec.baseline,
        )
        for spec in describe().values()
    ]
