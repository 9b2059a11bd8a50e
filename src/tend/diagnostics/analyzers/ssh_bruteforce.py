"""SSH brute force: failed logins per source address in the journal or the auth log."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.probes import c_locale

ID = "ssh_bruteforce"
LINES = 5000
WARNING_FAILURES = 10  # per source address
SUSPICIOUS_BEFORE_SUCCESS = 5
TOP = 10
AUTH_LOGS = ("/var/log/auth.log", "/var/log/secure")

_REPEATED = re.compile(r"message repeated (\d+) times: \[\s*(.*)\]\s*$")
_FAILED = re.compile(
    r"Failed (?:password|publickey|keyboard-interactive/pam|none) for (?:invalid user )?"
    r"(\S*) from (\S+) port (\d+)"
)
_INVALID = re.compile(r"Invalid user (\S*) from (\S+) port (\d+)")
_ACCEPTED = re.compile(r"Accepted (\S+) for (\S+) from (\S+) port (\d+)")
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)")


@dataclass(slots=True)
class Source:
    """What one remote address did."""

    address: str
    failures: int = 0
    users: set[str] = field(default_factory=set)
    accepted: list[str] = field(default_factory=list)
    first: str = ""
    last: str = ""


def parse_auth_log(text: str) -> dict[str, Source]:
    """Count failed SSH logins per source address in sshd log lines (journal or syslog files).

    Every ``Failed ...`` line is one guess; an ``Invalid user`` connection that never reached a
    password prompt counts once. ``message repeated N times`` lines count N times.
    """
    sources: dict[str, Source] = {}
    failed_connections: set[tuple[str, str]] = set()
    invalid: list[tuple[str, str, str, str]] = []

    def source(address: str, stamp: str) -> Source:
        entry = sources.setdefault(address, Source(address, first=stamp))
        entry.last = stamp or entry.last
        return entry

    for raw in text.splitlines():
        stamp_match = _STAMP.match(raw)
        stamp = stamp_match.group(1) if stamp_match else ""
        line, times = raw, 1
        repeated = _REPEATED.search(raw)
        if repeated:
            times, line = int(repeated.group(1)), repeated.group(2)
        if match := _FAILED.search(line):
            user, address, port = match.groups()
            entry = source(address, stamp)
            entry.failures += times
            entry.users.add(user)
            failed_connections.add((address, port))
        elif match := _INVALID.search(line):
            user, address, port = match.groups()
            invalid.append((user, address, port, stamp))
        elif match := _ACCEPTED.search(line):
            method, user, address, _port = match.groups()
            if address in sources:
                sources[address].accepted.append(f"{stamp} {user} ({method})".strip())
    for user, address, port, stamp in invalid:
        if (address, port) not in failed_connections:
            entry = source(address, stamp)
            entry.failures += 1
            entry.users.add(user)
    return sources


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    timeout = config.probe_timeout
    journal = c_locale(
        "journalctl", "-q", "--no-pager", "-o", "short-iso", f"--since=-{config.log_hours}h",
        "-n", str(LINES), "_COMM=sshd", "_COMM=sshd-session",
    )  # fmt: skip
    return [
        Probe("auth_journal", journal, timeout),
        Probe("auth_files", c_locale("tail", "-v", "-n", str(LINES), "--", *AUTH_LOGS), timeout),
    ]


def _lines(obs: Observations) -> tuple[str, str] | None:
    """The log text and a description of where it came from."""
    journal = obs.text("auth_journal")
    if journal and "sshd" in journal:
        return journal, f"the journal (last {obs.config.log_hours} h)"
    files = obs.text("auth_files")
    if files:
        return files, f"the last {LINES} lines of {' / '.join(AUTH_LOGS)}"
    return None


def _analyze(obs: Observations) -> list[Finding]:
    found = _lines(obs)
    if found is None:
        reasons = [o.why_not() for o in (obs.get("auth_journal"), obs.get("auth_files")) if o]
        return [finding(ID, Severity.INFO, "no sshd log readable", reasons)]
    text, where = found
    sources = parse_auth_log(text)
    total = sum(s.failures for s in sources.values())
    attackers = sorted(
        (s for s in sources.values() if s.failures >= WARNING_FAILURES),
        key=lambda s: (-s.failures, s.address),
    )
    breached = [s for s in attackers if s.accepted] + [
        s
        for s in sources.values()
        if s.accepted and SUSPICIOUS_BEFORE_SUCCESS <= s.failures < WARNING_FAILURES
    ]
    if not attackers and not breached:
        return [
            finding(
                ID,
                Severity.OK,
                "no SSH brute force",
                [f"{total} failed login(s) from {len(sources)} address(es) in {where}"],
            )
        ]
    evidence = [f"{total} failed SSH login(s) from {len(sources)} address(es) in {where}:"]
    for s in (attackers or breached)[:TOP]:
        users = ", ".join(sorted(s.users)[:6]) + (" …" if len(s.users) > 6 else "")
        evidence.append(
            f"  {s.address}: {s.failures} failures, users tried: {users} ({s.first} … {s.last})"
        )
    for s in breached:
        evidence.append(f"  LOGIN SUCCEEDED from {s.address} after failures: {s.accepted[0]}")
    severity = Severity.CRITICAL if breached else Severity.WARNING
    title = f"SSH brute force: {len(attackers)} address(es) with ≥ {WARNING_FAILURES} failures"
    if breached:
        title = f"SSH login succeeded from {breached[0].address} after repeated failures"
    top = (attackers or breached)[0].address
    cause = (
        "password guessing succeeded or a guessed account was used; treat as a possible compromise"
        if breached
        else "automated password guessing from the internet; password logins are enabled"
    )
    return [
        finding(
            ID,
            severity,
            title,
            evidence,
            cause=cause,
            steps=[
                (["last", "-i", "-n", "20"], "recent logins and their addresses"),
                (["fail2ban-client", "status", "sshd"], "whether fail2ban is banning them"),
                (["sshd", "-T"], "effective sshd settings (passwordauthentication?)"),
                (["iptables", "-I", "INPUT", "-s", top, "-j", "DROP"], f"block {top}"),
            ],
        )
    ]


SPEC = AnalyzerSpec(
    id=ID,
    description="failed SSH logins per source address (journal or auth.log) and logins after them",
    probes=_probes,
    analyze=_analyze,
)
