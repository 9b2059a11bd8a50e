"""Swap thrashing: pages moving in and out of swap at once, measured over the sample interval."""

from __future__ import annotations

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.parsing import counters, human_bytes, meminfo_kib, split_head, vmstat_sample
from tend.diagnostics.probes import procfs, vmstat

ID = "swap"
WARNING_KIB_S = 1024  # swap-in plus swap-out per second while both happen
CRITICAL_KIB_S = 10240
USED_WARNING = 80.0


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    return [procfs(config), vmstat(config)]


def _analyze(obs: Observations) -> list[Finding]:
    procs = obs.text("procfs")
    files = split_head(procs) if procs else {}
    info = meminfo_kib(files.get("/proc/meminfo", ""))
    total, free = info.get("SwapTotal"), info.get("SwapFree")
    sample = vmstat_sample(obs.text("vmstat") or "")
    if total is None or free is None:
        return [finding(ID, Severity.INFO, "swap unknown", ["/proc/meminfo unreadable"])]
    if total == 0:
        return [finding(ID, Severity.OK, "no swap configured", ["SwapTotal: 0 kB"])]
    if sample is None or "si" not in sample or "so" not in sample:
        output = obs.get("vmstat")
        return [
            finding(
                ID,
                Severity.INFO,
                "swap traffic unknown",
                [output.why_not() if output else "vmstat not run"],
            )
        ]
    swap_in, swap_out = sample["si"], sample["so"]
    used = total - free
    used_percent = 100.0 * used / total
    seconds = obs.config.sample_seconds
    totals = counters(files.get("/proc/vmstat", ""))
    evidence = [
        f"vmstat over {seconds} s: swapped in {swap_in} KiB/s, swapped out {swap_out} KiB/s",
        f"swap used {human_bytes(used * 1024)} of {human_bytes(total * 1024)} "
        f"({used_percent:.0f} %)",
    ]
    if "pswpin" in totals:
        evidence.append(
            f"/proc/vmstat since boot: pswpin {totals['pswpin']}, pswpout {totals.get('pswpout')}"
        )
    traffic = swap_in + swap_out
    thrashing = swap_in > 0 and swap_out > 0 and traffic >= WARNING_KIB_S
    if thrashing:
        severity = Severity.CRITICAL if traffic >= CRITICAL_KIB_S else Severity.WARNING
        title = f"swap thrashing: {swap_in} KiB/s in and {swap_out} KiB/s out"
    elif used_percent >= USED_WARNING:
        severity = Severity.WARNING
        title = f"swap {used_percent:.0f} % used"
    else:
        return [finding(ID, Severity.OK, f"swap calm ({traffic} KiB/s)", evidence)]
    return [
        finding(
            ID,
            severity,
            title,
            evidence,
            cause="the working set of running processes does not fit in memory; the kernel keeps "
            "evicting pages that are needed again at once",
            steps=[
                (["vmstat", "1", "10"], "watch si/so for ten seconds"),
                (["ps", "-eo", "pid,user,rss,etime,args", "--sort=-rss"], "who uses memory"),
                (["swapon", "--show"], "swap devices and their use"),
            ],
        )
    ]


SPEC = AnalyzerSpec(
    id=ID,
    description="swap thrashing (pages swapped in and out at once) and nearly full swap",
    probes=_probes,
    analyze=_analyze,
)
