"""High load: load averages per CPU, CPU saturation and I/O wait, with the processes behind them."""

from __future__ import annotations

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.parsing import Process, cpu_count, processes, split_head, vmstat_sample
from tend.diagnostics.probes import processes as ps_probe
from tend.diagnostics.probes import procfs, vmstat

ID = "load"
LOAD_WARNING = 1.5  # load1 per CPU
LOAD_CRITICAL = 3.0
BUSY_WARNING = 90  # % CPU busy over the sample
IOWAIT_WARNING = 20
IOWAIT_CRITICAL = 50
TOP = 5


def parse_loadavg(text: str) -> tuple[float, float, float] | None:
    """Parse ``/proc/loadavg`` into the 1, 5 and 15 minute averages."""
    parts = text.split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    return [procfs(config), vmstat(config), ps_probe(config)]


def _severity(per_cpu: float, busy: int | None, iowait: int | None) -> Severity:
    levels = [Severity.OK]
    if per_cpu >= LOAD_CRITICAL:
        levels.append(Severity.CRITICAL)
    elif per_cpu >= LOAD_WARNING:
        levels.append(Severity.WARNING)
    if busy is not None and busy >= BUSY_WARNING:
        levels.append(Severity.WARNING)
    if iowait is not None and iowait >= IOWAIT_CRITICAL:
        levels.append(Severity.CRITICAL)
    elif iowait is not None and iowait >= IOWAIT_WARNING:
        levels.append(Severity.WARNING)
    return max(levels, key=lambda s: s.rank)


def _cause(busy: int | None, iowait: int | None, top: list[Process], blocked: list[Process]) -> str:
    if iowait is not None and iowait >= IOWAIT_WARNING:
        who = f" ({', '.join(p.name for p in blocked[:3])} in D state)" if blocked else ""
        return f"processes are waiting on disk or network I/O{who}"
    if busy is not None and busy >= BUSY_WARNING and top:
        return f"CPU-bound work: {top[0].name} (pid {top[0].pid}) leads at {top[0].cpu_percent} %"
    if blocked:
        return "tasks stuck in uninterruptible sleep (D state) count towards the load"
    return "more runnable tasks than CPUs"


def _analyze(obs: Observations) -> list[Finding]:
    procs = obs.text("procfs")
    files = split_head(procs) if procs else {}
    loads = parse_loadavg(files.get("/proc/loadavg", ""))
    cpus = cpu_count(files.get("/proc/stat", "")) or 1
    if loads is None:
        return [finding(ID, Severity.INFO, "load unknown", ["/proc/loadavg unreadable"])]
    sample = vmstat_sample(obs.text("vmstat") or "")
    busy = 100 - sample["id"] if sample and "id" in sample else None
    iowait = sample.get("wa") if sample else None
    table = processes(obs.text("ps") or "")
    top = sorted((p for p in table if not p.zombie), key=lambda p: -p.cpu_percent)[:TOP]
    blocked = [p for p in table if p.stat.startswith("D")]
    per_cpu = loads[0] / cpus
    evidence = [
        f"/proc/loadavg: {files['/proc/loadavg'].strip()}",
        f"{cpus} CPU(s): load1 per CPU {per_cpu:.2f}",
    ]
    seconds = obs.config.sample_seconds
    if sample:
        evidence.append(
            f"vmstat over {seconds} s: runnable {sample.get('r')}, blocked {sample.get('b')}, "
            f"user {sample.get('us')} %, system {sample.get('sy')} %, idle {sample.get('id')} %, "
            f"iowait {sample.get('wa')} %, steal {sample.get('st', 0)} %"
        )
    else:
        output = obs.get("vmstat")
        evidence.append(f"no CPU sample: {output.why_not() if output else 'vmstat not run'}")
    if top:
        evidence.append("top processes by CPU (CPU time over their lifetime):")
        evidence += [f"  {p.describe()}" for p in top]
    if blocked:
        evidence.append(f"{len(blocked)} process(es) in uninterruptible sleep (D):")
        evidence += [f"  {p.describe()}" for p in blocked[:TOP]]
    severity = _severity(per_cpu, busy, iowait)
    title = f"load {loads[0]:.2f} on {cpus} CPU(s)"
    if busy is not None:
        title += f", CPU {busy} % busy, iowait {iowait} %"
    if severity is Severity.OK:
        return [finding(ID, Severity.OK, title, evidence)]
    steps: list[tuple[list[str], str]] = [
        (["top", "-b", "-n", "1", "-o", "%CPU"], "current CPU use per process"),
    ]
    if top:
        pids = ",".join(str(p.pid) for p in top)
        steps.append((["ps", "-o", "pid,ppid,user,%cpu,etime,args", "-p", pids], "who they are"))
        steps.append((["renice", "-n", "10", "-p", str(top[0].pid)], "lower the top process"))
    if iowait is not None and iowait >= IOWAIT_WARNING:
        steps.insert(0, (["iostat", "-x", "1", "3"], "which disk is busy"))
    cause = _cause(busy, iowait, top, blocked)
    return [finding(ID, severity, title, evidence, cause=cause, steps=steps)]


SPEC = AnalyzerSpec(
    id=ID,
    description="load per CPU, CPU saturation and I/O wait, with the top and blocked processes",
    probes=_probes,
    analyze=_analyze,
)
