"""Clock not synchronised: timedatectl and chrony's view, and the offset against tend's clock."""

from __future__ import annotations

import re

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.parsing import key_values
from tend.diagnostics.probes import c_locale

ID = "clock"
OFFSET_WARNING = 1.0  # seconds
OFFSET_CRITICAL = 60.0
_CHRONY_OFFSET = re.compile(r"([\d.]+) seconds (fast|slow)")


def parse_timedatectl(text: str) -> dict[str, str]:
    """Parse ``timedatectl show`` (``Key=value``) or ``timedatectl status`` (``Key: value``)."""
    lines = text.strip().splitlines()
    if lines and "=" in lines[0] and ":" not in lines[0].partition("=")[0]:
        return key_values(text, "=")
    values = key_values(text, ":")
    # `status` names the same facts differently; map them to `show`'s names.
    synced = values.get("System clock synchronized")
    service = values.get("NTP service")
    mapped = dict(values)
    if synced is not None:
        mapped["NTPSynchronized"] = synced
    if service is not None:
        mapped["NTP"] = "yes" if service == "active" else "no"
    return mapped


def chrony_offset(tracking: dict[str, str]) -> float | None:
    """Seconds the system clock is ahead (+) or behind (-) per ``chronyc tracking``."""
    match = _CHRONY_OFFSET.search(tracking.get("System time", ""))
    if match is None:
        return None
    value = float(match.group(1))
    return value if match.group(2) == "fast" else -value


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    timeout = config.probe_timeout
    return [
        Probe("timedatectl", c_locale("timedatectl", "show"), timeout),
        Probe("chrony", c_locale("chronyc", "-n", "tracking"), timeout),
    ]


def server_offset(obs: Observations) -> float | None:
    """How far the host clock is at least ahead of tend's (negative: behind); ``None`` locally."""
    output = obs.get("clock")
    if output is None or not output.usable or obs.local:
        return None
    try:
        remote = float(output.stdout.strip())
    except ValueError:
        return None
    # `date` ran somewhere between sending and receiving; the middle is the best estimate and
    # half the round trip the uncertainty.
    middle = (output.started_at + output.finished_at) / 2
    uncertainty = (output.finished_at - output.started_at) / 2
    offset = remote - middle
    certain = max(0.0, abs(offset) - uncertainty)  # the offset it is off by at least
    return certain if offset >= 0 else -certain


def _analyze(obs: Observations) -> list[Finding]:
    evidence: list[str] = []
    problems: list[str] = []
    severity = Severity.OK
    sources = 0
    ntp_off = False
    td = obs.text("timedatectl")
    if td:
        sources += 1
        props = parse_timedatectl(td)
        synced, ntp = props.get("NTPSynchronized"), props.get("NTP")
        evidence.append(f"timedatectl: NTPSynchronized={synced} NTP={ntp}")
        if synced == "no":
            problems.append("timedatectl reports the clock is not synchronised")
            ntp_off = ntp == "no"
    chrony = obs.text("chrony")
    offset: float | None = None
    if chrony:
        sources += 1
        tracking = key_values(chrony)
        leap = tracking.get("Leap status", "")
        offset = chrony_offset(tracking)
        evidence.append(
            f"chronyc tracking: Leap status {leap}, reference {tracking.get('Reference ID', '?')},"
            f" System time {tracking.get('System time', '?')}"
        )
        if leap.lower().startswith("not synchronised"):
            problems.append("chrony is not synchronised to any source")
    skew = server_offset(obs)
    if skew is not None:
        evidence.append(f"host clock minus tend's clock: {skew:+.3f} s (net of the round trip)")
    worst_offset = max(abs(v) for v in (offset, skew, 0.0) if v is not None)
    if worst_offset >= OFFSET_WARNING:
        problems.append(f"the clock is off by {worst_offset:.1f} s")
    if problems:
        severity = Severity.CRITICAL if worst_offset >= OFFSET_CRITICAL else Severity.WARNING
    if sources == 0 and skew is None:
        reasons = [o.why_not() for o in (obs.get("timedatectl"), obs.get("chrony")) if o]
        return [finding(ID, Severity.INFO, "clock synchronisation unknown", reasons)]
    if severity is Severity.OK and sources == 0:
        title = f"clock within {OFFSET_WARNING:.0f} s of tend's (no NTP status on the host)"
        return [finding(ID, Severity.OK, title, evidence)]
    if severity is Severity.OK:
        return [finding(ID, Severity.OK, "clock synchronised", evidence)]
    cause = (
        "no NTP client is enabled"
        if ntp_off
        else "the NTP client cannot reach its servers or has not converged yet"
    )
    return [
        finding(
            ID,
            severity,
            "clock not synchronised: " + "; ".join(problems),
            evidence,
            cause=cause,
            steps=[
                (["timedatectl", "timesync-status"], "systemd-timesyncd's view"),
                (["chronyc", "sources", "-v"], "chrony's servers and their state"),
                (["timedatectl", "set-ntp", "true"], "enable NTP synchronisation"),
            ],
        )
    ]


SPEC = AnalyzerSpec(
    id=ID,
    description="clock not synchronised (timedatectl, chronyc) or off against tend's clock",
    probes=_probes,
    analyze=_analyze,
)
