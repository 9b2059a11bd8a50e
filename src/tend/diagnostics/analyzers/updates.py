"""Pending package updates (apt, dnf) and whether the host asks for a reboot."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.parsing import split_head
from tend.diagnostics.probes import c_locale

ID = "updates"
REBOOT_FILES = ("/var/run/reboot-required", "/var/run/reboot-required.pkgs")
SHOWN = 15
DNF_UPDATES = 100  # `dnf check-update` exits 100 when updates are available
_APT_LINE = re.compile(r"^(\S+?)/(\S+) (\S+) (\S+) \[upgradable from: ([^\]]+)\]")
_DNF_LINE = re.compile(r"^(\S+)\.(\S+)\s+(\S+)\s+(\S+)\s*$")
_KERNEL = re.compile(r"^vmlinuz-(.+)$")


@dataclass(frozen=True, slots=True)
class Update:
    """One package with a newer version available."""

    name: str
    version: str
    source: str
    security: bool


def parse_apt_upgradable(text: str) -> list[Update]:
    """Parse ``apt list --upgradable`` (``name/suite version arch [upgradable from: old]``)."""
    updates = []
    for line in text.splitlines():
        match = _APT_LINE.match(line.strip())
        if match:
            suites = match.group(2)
            updates.append(Update(match.group(1), match.group(3), suites, "-security" in suites))
    return updates


def parse_dnf_check_update(text: str) -> list[Update]:
    """Parse ``dnf check-update -q`` (``name.arch version repo``; obsoletes are skipped)."""
    updates = []
    for line in text.splitlines():
        if line.startswith(("Obsoleting", " ")) or not line.strip():
            continue
        match = _DNF_LINE.match(line)
        if match:
            repo = match.group(4)
            updates.append(Update(match.group(1), match.group(3), repo, "security" in repo))
    return updates


def _version_key(version: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-_+~]", version)]


def newest_kernel(boot_listing: str) -> str | None:
    """The newest kernel version among ``vmlinuz-*`` files of an ``ls -1 /boot``."""
    versions = [
        m.group(1)
        for line in boot_listing.splitlines()
        if (m := _KERNEL.match(line.strip())) and "rescue" not in line
    ]
    return max(versions, key=_version_key) if versions else None


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    timeout = config.probe_timeout
    return [
        Probe("apt", c_locale("apt", "list", "--upgradable"), timeout * 3),
        Probe("dnf", c_locale("dnf", "-q", "check-update"), timeout * 3),
        Probe("reboot_files", c_locale("head", "-v", "-n", "200", "--", *REBOOT_FILES), timeout),
        Probe("kernel", ("uname", "-r"), timeout),
        Probe("boot", ("ls", "-1", "/boot"), timeout),
    ]


def _updates(obs: Observations) -> tuple[list[Update], str | None]:
    apt = obs.get("apt")
    if apt is not None and apt.status == "ok":
        return parse_apt_upgradable(apt.stdout), "apt"
    dnf = obs.get("dnf")
    if dnf is not None and dnf.exit_code in (0, DNF_UPDATES):
        return parse_dnf_check_update(dnf.stdout), "dnf"
    return [], None


def _reboot(obs: Observations, manager: str | None) -> list[str]:
    """Evidence that a reboot is needed (empty when none is)."""
    text = obs.text("reboot_files")
    files = split_head(text) if text else {}
    if "/var/run/reboot-required" in files:
        packages = files.get("/var/run/reboot-required.pkgs", "").split()
        return [
            "/var/run/reboot-required exists: " + files["/var/run/reboot-required"].strip(),
            *([f"requested by: {', '.join(sorted(set(packages)))}"] if packages else []),
        ]
    running = (obs.text("kernel") or "").strip()
    newest = newest_kernel(obs.text("boot") or "")
    # Debian-likes say so in /var/run/reboot-required; elsewhere compare kernels.
    if manager == "dnf" and running and newest and newest != running:
        return [f"running kernel {running}, newest installed {newest}"]
    return []


def _analyze(obs: Observations) -> list[Finding]:
    updates, manager = _updates(obs)
    reboot = _reboot(obs, manager)
    found: list[Finding] = []
    if manager is None:
        reasons = [o.why_not() for o in (obs.get("apt"), obs.get("dnf")) if o]
        found.append(finding(ID, Severity.INFO, "pending updates unknown: no apt or dnf", reasons))
    elif updates:
        security = [u for u in updates if u.security]
        severity = Severity.WARNING if security else Severity.INFO
        title = f"{len(updates)} package update(s) pending"
        if security:
            title += f", {len(security)} of them security updates"
        listed = security + [u for u in updates if not u.security]
        evidence = [f"{manager}: {u.name} {u.version} ({u.source})" for u in listed[:SHOWN]]
        if len(listed) > SHOWN:
            evidence.append(f"… and {len(listed) - SHOWN} more")
        upgrade = ["apt-get", "upgrade", "-y"] if manager == "apt" else ["dnf", "upgrade", "-y"]
        preview = ["apt-get", "-s", "upgrade"] if manager == "apt" else ["dnf", "check-update"]
        found.append(
            finding(
                ID,
                severity,
                title,
                evidence,
                cause="updates were published since the packages were last upgraded",
                steps=[(preview, "what an upgrade would do"), (upgrade, "install the updates")],
            )
        )
    if reboot:
        found.append(
            finding(
                ID,
                Severity.WARNING,
                "a reboot is required",
                reboot,
                cause="updated packages (kernel, libc, systemd) take effect only after a reboot",
                steps=[
                    (["uptime"], "how long the host has been up"),
                    (["reboot"], "reboot the host"),
                ],
            )
        )
    if not found:
        found.append(finding(ID, Severity.OK, "no pending updates, no reboot required", []))
    return found


SPEC = AnalyzerSpec(
    id=ID,
    description="pending package updates (apt, dnf; security ones first) and required reboots",
    probes=_probes,
    analyze=_analyze,
)
