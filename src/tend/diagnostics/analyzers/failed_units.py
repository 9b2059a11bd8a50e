"""Failed systemd units, each with why systemd says it failed and its last log lines."""

from __future__ import annotations

from dataclasses import dataclass

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.probes import c_locale

ID = "failed_units"
MAX_UNITS = 5
LOG_LINES = 15
_NO_SYSTEMD = ("has not been booted with systemd", "Failed to connect to bus", "not found")
_RESULTS = {
    "exit-code": "the main process exited with an error",
    "signal": "the main process was killed by a signal",
    "core-dump": "the main process crashed (core dump)",
    "oom-kill": "the kernel killed it for memory (OOM)",
    "timeout": "it did not start or stop within its timeout",
    "start-limit-hit": "it failed repeatedly and systemd stopped restarting it",
    "watchdog": "it stopped answering its watchdog",
    "resources": "systemd could not set up its resources (files, users, directories)",
    "exec-condition": "its ExecCondition failed",
}


@dataclass(frozen=True, slots=True)
class FailedUnit:
    """One line of ``systemctl list-units --state=failed``."""

    name: str
    load: str
    active: str
    sub: str
    description: str


def parse_failed_units(text: str) -> list[FailedUnit]:
    """Parse ``systemctl list-units --state=failed --no-legend --plain`` output."""
    units: list[FailedUnit] = []
    for line in text.splitlines():
        parts = line.lstrip("● *").split(None, 4)
        if len(parts) >= 4 and "." in parts[0]:
            name, load, active, sub = parts[:4]
            units.append(FailedUnit(name, load, active, sub, parts[4] if len(parts) > 4 else ""))
    return units


def parse_show(text: str) -> dict[str, dict[str, str]]:
    """Parse ``systemctl show`` of several units (blocks separated by blank lines) by ``Id``."""
    units: dict[str, dict[str, str]] = {}
    for block in text.split("\n\n"):
        props = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key] = value
        if "Id" in props:
            units[props["Id"]] = props
    return units


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    argv = c_locale(
        "systemctl", "list-units", "--state=failed", "--all", "--no-legend", "--plain",
        "--no-pager", "--full",
    )  # fmt: skip
    return [Probe("failed_units", argv, config.probe_timeout)]


def _units(obs: Observations) -> list[FailedUnit]:
    text = obs.text("failed_units")
    return parse_failed_units(text) if text else []


def _follow_up(obs: Observations) -> list[Probe]:
    units = [u.name for u in _units(obs)[:MAX_UNITS]]
    if not units:
        return []
    timeout = obs.config.probe_timeout
    props = "--property=Id,Result,ExecMainStatus,ExecMainCode,NRestarts,InactiveEnterTimestamp"
    probes = [Probe("unit_show", c_locale("systemctl", "show", props, "--", *units), timeout)]
    for unit in units:
        argv = c_locale(
            "journalctl", "-u", unit, "-n", str(LOG_LINES), "-q", "--no-pager", "-o", "short-iso"
        )
        probes.append(Probe(f"unit_log:{unit}", argv, timeout))
    return probes


def _unit_finding(obs: Observations, unit: FailedUnit, props: dict[str, str]) -> Finding:
    result = props.get("Result", "")
    status = props.get("ExecMainStatus", "")
    evidence = [f"systemctl: {unit.name} {unit.load} {unit.active} {unit.sub} {unit.description}"]
    if props:
        evidence.append(
            f"result {result or '?'}, main process exit status {status or '?'}, "
            f"restarts {props.get('NRestarts', '?')}, failed at "
            f"{props.get('InactiveEnterTimestamp') or '?'}"
        )
    log = obs.get(f"unit_log:{unit.name}")
    if log is not None and log.usable:
        lines = log.stdout.strip().splitlines()
        evidence.append(f"last {len(lines)} log line(s):")
        evidence += [f"  {line}" for line in lines]
    elif log is not None:
        evidence.append(f"no log lines: {log.why_not()}")
    cause = _RESULTS.get(result, "see the unit's last log lines")
    if result == "exit-code" and status:
        cause += f" (status {status})"
    return finding(
        ID,
        Severity.WARNING,
        f"unit {unit.name} failed" + (f" ({result})" if result else ""),
        evidence,
        cause=cause,
        steps=[
            (["systemctl", "status", "--no-pager", "-l", unit.name], "the unit's state and log"),
            (["journalctl", "-u", unit.name, "-b", "-n", "200", "--no-pager"], "more of its log"),
            (["systemctl", "restart", unit.name], "start it again once the cause is fixed"),
            (["systemctl", "reset-failed", unit.name], "clear the failed state"),
        ],
    )


def _analyze(obs: Observations) -> list[Finding]:
    output = obs.get("failed_units")
    if output is None:
        return []
    if output.status not in ("ok", "failed") or (
        output.exit_code not in (0, None) and not output.stdout.strip()
    ):
        message = (output.stderr or output.error or "").strip()
        if any(marker in message for marker in _NO_SYSTEMD) or output.status == "missing":
            title = "systemd is not running here: no units to check"
        else:
            title = "failed units unknown"
        return [finding(ID, Severity.INFO, title, [output.why_not()])]
    units = _units(obs)
    if not units:
        return [finding(ID, Severity.OK, "no failed systemd units", ["systemctl --failed: none"])]
    show = obs.get("unit_show")
    props = parse_show(show.stdout) if show is not None else {}
    found = [_unit_finding(obs, unit, props.get(unit.name, {})) for unit in units[:MAX_UNITS]]
    if len(units) > MAX_UNITS:
        rest = [u.name for u in units[MAX_UNITS:]]
        found.append(
            finding(ID, Severity.WARNING, f"{len(rest)} more failed unit(s)", [", ".join(rest)])
        )
    return found


SPEC = AnalyzerSpec(
    id=ID,
    description="failed systemd units with their result and last log lines",
    probes=_probes,
    follow_up=_follow_up,
    analyze=_analyze,
)
