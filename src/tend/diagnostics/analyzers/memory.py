"""Memory pressure and OOM kills: available memory, pressure stall, and the kernel's kill log."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.parsing import (
    human_bytes,
    meminfo_kib,
    parse_time,
    pressure,
    processes,
    split_head,
)
from tend.diagnostics.probes import dmesg, kernel_log, procfs
from tend.diagnostics.probes import processes as ps_probe

ID = "memory"
WARNING_AVAILABLE = 10.0
CRITICAL_AVAILABLE = 5.0
WARNING_STALL = 10.0  # % of time all non-idle tasks stalled on memory (PSI full avg60)
RECENT = timedelta(hours=1)
TOP = 5

_KILLED = re.compile(r"Killed process (\d+) \(([^)]*)\)(?:.*?anon-rss:(\d+)kB)?")
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.,]+(?:[+-]\d\d:?\d\d|Z)?)\s")


@dataclass(frozen=True, slots=True)
class OomKill:
    """One process the kernel killed for memory."""

    at: datetime | None
    pid: int
    name: str
    rss_kib: int | None
    cgroup: bool
    line: str


def parse_oom_kills(text: str) -> list[OomKill]:
    """Find OOM kills in ``journalctl -k -o short-iso`` or ``dmesg --time-format iso`` output."""
    kills: list[OomKill] = []
    cgroup = False
    for line in text.splitlines():
        if "Memory cgroup out of memory" in line:
            cgroup = True
        match = _KILLED.search(line)
        if match is None:
            continue
        stamp = _TIME.match(line)
        kills.append(
            OomKill(
                at=parse_time(stamp.group(1)) if stamp else None,
                pid=int(match.group(1)),
                name=match.group(2),
                rss_kib=int(match.group(3)) if match.group(3) else None,
                cgroup=cgroup or "Memory cgroup" in line,
                line=line.strip(),
            )
        )
        cgroup = False
    return kills


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    return [procfs(config), ps_probe(config), kernel_log(config)]


def _journal_has_kernel(obs: Observations) -> bool:
    return bool(obs.text("kernel_log"))


def _follow_up(obs: Observations) -> list[Probe]:
    # No kernel messages in the journal (no journald, no permission, quiet window): dmesg.
    return [] if _journal_has_kernel(obs) else [dmesg(obs.config)]


def _kills(obs: Observations) -> tuple[list[OomKill], str | None]:
    """OOM kills inside the log window and where they came from (``None`` = no kernel log)."""
    config = obs.config
    for probe_id in ("kernel_log", "dmesg"):
        text = obs.text(probe_id)
        if text:
            since = obs.now - timedelta(hours=config.log_hours)
            kills = [k for k in parse_oom_kills(text) if k.at is None or k.at >= since]
            return kills, probe_id
    output = obs.get("dmesg") or obs.get("kernel_log")
    if output is not None and output.status == "ok":
        return [], output.probe.id
    return [], None


def _top_memory(obs: Observations) -> list[str]:
    text = obs.text("ps")
    if text is None:
        return []
    top = sorted(processes(text), key=lambda p: -p.rss_kib)[:TOP]
    return ["largest processes by resident memory:", *(f"  {p.describe()}" for p in top)]


def _pressure_finding(obs: Observations) -> Finding | None:
    procs = obs.text("procfs")
    files = split_head(procs) if procs else {}
    info = meminfo_kib(files.get("/proc/meminfo", ""))
    total, available = info.get("MemTotal"), info.get("MemAvailable")
    if not total or available is None:
        return finding(ID, Severity.INFO, "memory usage unknown", ["/proc/meminfo unreadable"])
    percent = 100.0 * available / total
    stall = pressure(files.get("/proc/pressure/memory", "")).get("full", {}).get("avg60")
    evidence = [
        f"MemTotal {human_bytes(total * 1024)}, MemAvailable {human_bytes(available * 1024)} "
        f"({percent:.1f} % available)",
    ]
    swap_total, swap_free = info.get("SwapTotal", 0), info.get("SwapFree", 0)
    if swap_total:
        evidence.append(
            f"swap {human_bytes((swap_total - swap_free) * 1024)} used of "
            f"{human_bytes(swap_total * 1024)}"
        )
    if stall is not None:
        evidence.append(f"memory pressure (PSI full avg60): {stall:.2f} %")
    if percent < CRITICAL_AVAILABLE:
        severity = Severity.CRITICAL
    elif percent < WARNING_AVAILABLE or (stall is not None and stall >= WARNING_STALL):
        severity = Severity.WARNING
    else:
        return None
    top = _top_memory(obs)
    biggest = top[1].strip() if len(top) > 1 else "unknown"
    return finding(
        ID,
        severity,
        f"only {percent:.1f} % of memory is available",
        [*evidence, *top],
        cause=f"memory is used up; the largest process is {biggest}",
        steps=[
            (["ps", "-eo", "pid,user,rss,etime,args", "--sort=-rss"], "all processes by memory"),
            (["free", "-m"], "memory and swap totals"),
            (["systemctl", "status", str(_top_pid(obs) or 1)], "which service owns the largest"),
        ],
    )


def _top_pid(obs: Observations) -> int | None:
    text = obs.text("ps")
    procs = sorted(processes(text), key=lambda p: -p.rss_kib) if text else []
    return procs[0].pid if procs else None


def _oom_finding(obs: Observations, kills: list[OomKill], source: str) -> Finding:
    recent = [k for k in kills if k.at is not None and obs.now - k.at <= RECENT]
    severity = Severity.CRITICAL if recent else Severity.WARNING
    names = sorted({k.name for k in kills})
    cgroup = all(k.cgroup for k in kills)
    cause = (
        "a memory cgroup limit (a container's or a systemd unit's MemoryMax) was reached"
        if cgroup
        else "the host ran out of memory and swap; the kernel killed the largest process"
    )
    window = obs.config.log_hours
    evidence = [f"{len(kills)} OOM kill(s) in the last {window} h ({source}):"]
    evidence += [f"  {k.line}" for k in kills[-10:]]
    return finding(
        ID,
        severity,
        f"the kernel killed {len(kills)} process(es) for memory: {', '.join(names)}",
        [*evidence, *_top_memory(obs)],
        cause=cause,
        steps=[
            (["journalctl", "-k", "-g", "oom", "--since", f"-{window}h"], "the full OOM reports"),
            (["ps", "-eo", "pid,user,rss,etime,args", "--sort=-rss"], "who uses memory now"),
        ],
    )


def _analyze(obs: Observations) -> list[Finding]:
    found: list[Finding] = []
    pressure_finding = _pressure_finding(obs)
    if pressure_finding is not None:
        found.append(pressure_finding)
    kills, source = _kills(obs)
    if kills and source is not None:
        found.append(_oom_finding(obs, kills, source))
    if source is None:
        reasons = [o.why_not() for o in (obs.get("kernel_log"), obs.get("dmesg")) if o]
        found.append(
            finding(ID, Severity.INFO, "OOM kills unknown: the kernel log is not readable", reasons)
        )
    if not found or all(f.severity is Severity.INFO for f in found):
        procs = obs.text("procfs")
        info = meminfo_kib(split_head(procs).get("/proc/meminfo", "")) if procs else {}
        total, available = info.get("MemTotal"), info.get("MemAvailable")
        if total and available is not None:
            title = f"{100.0 * available / total:.0f} % of memory available"
            sizes = f"MemAvailable {human_bytes(available * 1024)} of {human_bytes(total * 1024)}"
            evidence = [sizes, *_top_memory(obs)]
            if source:
                title += ", no OOM kills"
                evidence.insert(1, f"no OOM kill in the last {obs.config.log_hours} h ({source})")
            found.insert(0, finding(ID, Severity.OK, title, evidence))
    return found


SPEC = AnalyzerSpec(
    id=ID,
    description="available memory, memory pressure stalls and OOM kills in the kernel log",
    probes=_probes,
    follow_up=_follow_up,
    analyze=_analyze,
)
