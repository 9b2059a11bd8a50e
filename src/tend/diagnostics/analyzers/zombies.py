"""Zombie processes, grouped by the parent that does not reap them."""

from __future__ import annotations

from collections import defaultdict

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.parsing import Process, processes
from tend.diagnostics.probes import processes as ps_probe

ID = "zombies"
WARNING_COUNT = 5
CRITICAL_COUNT = 500
TOP_PARENTS = 5


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    return [ps_probe(config)]


def zombies_by_parent(table: list[Process]) -> dict[int, list[Process]]:
    """Group zombie processes by their parent's pid."""
    grouped: dict[int, list[Process]] = defaultdict(list)
    for process in table:
        if process.zombie:
            grouped[process.ppid].append(process)
    return dict(grouped)


def _analyze(obs: Observations) -> list[Finding]:
    text = obs.text("ps")
    if text is None:
        output = obs.get("ps")
        return [
            finding(ID, Severity.INFO, "processes unknown", [output.why_not()] if output else [])
        ]
    table = processes(text)
    by_pid = {p.pid: p for p in table}
    grouped = zombies_by_parent(table)
    count = sum(len(children) for children in grouped.values())
    if count == 0:
        return [finding(ID, Severity.OK, "no zombie processes", [f"{len(table)} processes"])]
    if count >= CRITICAL_COUNT:
        severity = Severity.CRITICAL
    elif count >= WARNING_COUNT:
        severity = Severity.WARNING
    else:
        severity = Severity.INFO
    parents = sorted(grouped.items(), key=lambda item: -len(item[1]))
    evidence = [f"{count} zombie process(es) under {len(grouped)} parent(s)"]
    for ppid, children in parents[:TOP_PARENTS]:
        parent = by_pid.get(ppid)
        who = parent.describe() if parent else f"pid {ppid} (gone)"
        pids = ", ".join(f"{c.pid} {c.name}" for c in children[:10])
        more = f" and {len(children) - 10} more" if len(children) > 10 else ""
        evidence.append(f"parent {who} has {len(children)} zombie(s): {pids}{more}")
    worst_ppid, worst_children = parents[0]
    parent = by_pid.get(worst_ppid)
    name = parent.name if parent else f"pid {worst_ppid}"
    return [
        finding(
            ID,
            severity,
            f"{count} zombie process(es); {name} (pid {worst_ppid}) does not reap "
            f"{len(worst_children)}",
            evidence,
            cause=f"{name} starts children and never waits for them (a bug in that program); "
            "zombies hold a pid each until the parent reaps them or exits",
            steps=[
                (
                    ["ps", "-o", "pid,ppid,user,stat,etime,args", "-p", str(worst_ppid)],
                    "the parent",
                ),
                (["systemctl", "status", str(worst_ppid)], "the service the parent belongs to"),
                (["kill", "-s", "CHLD", str(worst_ppid)], "ask the parent to reap its children"),
            ],
        )
    ]


SPEC = AnalyzerSpec(
    id=ID,
    description="zombie processes and the parents that do not reap them",
    probes=_probes,
    analyze=_analyze,
)
