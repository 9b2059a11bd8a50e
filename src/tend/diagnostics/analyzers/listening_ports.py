"""New listening ports since the last check (the previous set is kept in the database)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.probes import c_locale

ID = "listening_ports"
_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')
_LOOPBACK = ("127.", "[::1]", "::1", "[::ffff:127.")


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket."""

    proto: str
    address: str
    port: int
    process: str = ""
    pid: int | None = None

    @property
    def key(self) -> str:
        """Identity across checks: protocol, address and port."""
        return f"{self.proto} {self.address}:{self.port}"

    @property
    def loopback(self) -> bool:
        """Whether only this host can reach it."""
        return self.address.startswith(_LOOPBACK) or self.address == "localhost"

    def describe(self) -> str:
        """One evidence line."""
        return f"{self.key}" + (f" ({self.process})" if self.process else "")


def parse_ss(text: str) -> list[Listener]:
    """Parse ``ss -H -l -n -t -u -p`` output."""
    found: dict[str, Listener] = {}
    for line in text.splitlines():
        parts = line.split(None, 6)
        if len(parts) < 5 or parts[0] not in ("tcp", "udp"):
            continue
        address, sep, port = parts[4].rpartition(":")
        if not sep or not port.isdigit():
            continue
        address = address.split("%", 1)[0] if not address.startswith("[") else address
        users = _USERS.findall(parts[6]) if len(parts) > 6 else []
        process = ", ".join(f"{name} pid {pid}" for name, pid in users)
        pid = int(users[0][1]) if users else None
        listener = Listener(parts[0], address, int(port), process, pid)
        found.setdefault(listener.key, listener)
    return sorted(found.values(), key=lambda item: (item.proto, item.port, item.address))


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    argv = c_locale("ss", "-H", "-l", "-n", "-t", "-u", "-p")
    return [Probe("listening", argv, config.probe_timeout)]


def _analyze(obs: Observations) -> list[Finding]:
    text = obs.text("listening")
    output = obs.get("listening")
    if text is None and (output is None or output.status != "ok"):
        return [
            finding(
                ID, Severity.INFO, "listening ports unknown", [output.why_not() if output else ""]
            )
        ]
    current = parse_ss(text or "")
    obs.new_baseline = {
        "at": obs.now.isoformat(),
        "ports": {item.key: item.process for item in current},
    }
    previous = obs.baseline
    if not isinstance(previous, dict) or not isinstance(previous.get("ports"), dict):
        return [
            finding(
                ID,
                Severity.OK,
                f"first check: {len(current)} listening socket(s) recorded as the baseline",
                [item.describe() for item in current],
            )
        ]
    since = previous.get("at", "the last check")
    new = [item for item in current if item.key not in previous["ports"]]
    gone = sorted(set(previous["ports"]) - {item.key for item in current})
    if not new:
        evidence = [f"{len(current)} listening socket(s), none new since {since}"]
        evidence += [f"closed since then: {key}" for key in gone]
        return [finding(ID, Severity.OK, "no new listening ports", evidence)]
    exposed = [item for item in new if not item.loopback]
    severity = Severity.WARNING if exposed else Severity.INFO
    evidence = [f"new since {since}:"] + [f"  {item.describe()}" for item in new]
    evidence += [f"closed since then: {key}" for key in gone]
    first = (exposed or new)[0]
    steps: list[tuple[list[str], str]] = [
        (["ss", "-l", "-n", "-p", "sport", "=", f":{first.port}"], "the socket and its owner"),
    ]
    if first.pid is not None:
        pid = str(first.pid)
        steps.append((["ps", "-o", "pid,ppid,user,etime,args", "-p", pid], "the process"))
        steps.append((["systemctl", "status", pid], "the service it belongs to"))
    reach = "reachable from the network" if exposed else "on loopback only"
    return [
        finding(
            ID,
            severity,
            f"{len(new)} new listening port(s) since the last check ({reach})",
            evidence,
            cause="a service was installed, started or reconfigured since the last check — "
            "expected after a deployment, suspicious otherwise",
            steps=steps,
        )
    ]


SPEC = AnalyzerSpec(
    id=ID,
    description="listening TCP/UDP ports that appeared since the previous check of the host",
    probes=_probes,
    analyze=_analyze,
    baseline=True,
)
