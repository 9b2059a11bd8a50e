"""TLS certificates on disk that expire soon (read as PEM text, parsed on the tend server).

Only certificate blocks are parsed; files the policy takes for private keys are never read, and
CA certificates (trust stores, chain intermediates) are skipped: the leaf is what expires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.parsing import split_head
from tend.diagnostics.probes import c_locale

ID = "certificates"
MAX_FILES = 100
MAX_FILE_BYTES = 65536
CRITICAL_DAYS = 3
TRUST_STORES = ("/etc/ssl/certs", "/etc/pki/ca-trust", "/usr/share/ca-certificates")
_NAMES = ("*.pem", "*.crt", "*.cer")
_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_SKIP_NAMES = ("key", "ca-bundle", "ca-certificates", "dhparam")


@dataclass(frozen=True, slots=True)
class CertInfo:
    """The leaf certificate of one file."""

    path: str
    subject: str
    names: tuple[str, ...]
    issuer: str
    not_after: datetime
    serial: int

    def days_left(self, now: datetime) -> float:
        """Days until it expires (negative once expired)."""
        return (self.not_after - now).total_seconds() / 86400


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def parse_certificates(path: str, pem: str) -> list[CertInfo]:
    """The non-CA certificates in one file's PEM text (unparsable blocks are skipped)."""
    found: list[CertInfo] = []
    for block in _BLOCK.findall(pem.encode()):
        try:
            cert = x509.load_pem_x509_certificate(block)
        except ValueError:
            continue
        if _is_ca(cert):
            continue
        try:
            alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = tuple(alt.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = ()
        found.append(
            CertInfo(
                path=path,
                subject=_common_name(cert.subject),
                names=names,
                issuer=_common_name(cert.issuer),
                not_after=cert.not_valid_after_utc,
                serial=cert.serial_number,
            )
        )
    return found


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    dirs = [d.rstrip("/") or "/" for d in config.cert_dirs]
    if not dirs:
        return []
    prune: list[str] = []
    for store in TRUST_STORES:
        if store not in dirs:
            prune += [*(["-o"] if prune else []), "-path", store]
    names: list[str] = []
    for pattern in _NAMES:
        names += [*(["-o"] if names else []), "-name", pattern]
    argv = ["find", "-L", *dirs, "-maxdepth", "4"]
    if prune:
        argv += ["(", *prune, ")", "-prune", "-o"]
    argv += ["-type", "f", "(", *names, ")", "-size", "-200k", "-print"]
    return [Probe("cert_files", c_locale(*argv), config.probe_timeout)]


def _candidates(obs: Observations) -> list[str]:
    text = obs.text("cert_files") or ""
    paths = []
    for line in text.splitlines():
        base = line.rsplit("/", 1)[-1].lower()
        if line.startswith("/") and not any(word in base for word in _SKIP_NAMES):
            paths.append(line)
    return sorted(set(paths))


def _read_argv(paths: list[str]) -> tuple[str, ...]:
    return c_locale("head", "-v", "-c", str(MAX_FILE_BYTES), "--", *paths)


def _readable(obs: Observations) -> tuple[list[str], list[str]]:
    """Candidate files the policy lets a read touch, and the ones it does not."""
    ok: list[str] = []
    refused: list[str] = []
    for path in _candidates(obs)[:MAX_FILES]:
        (ok if obs.readable(_read_argv([path])) else refused).append(path)
    return ok, refused


def _follow_up(obs: Observations) -> list[Probe]:
    paths, _ = _readable(obs)
    if not paths:
        return []
    return [Probe("cert_contents", _read_argv(paths), obs.config.probe_timeout)]


def _unique(obs: Observations) -> list[CertInfo]:
    text = obs.text("cert_contents") or ""
    seen: dict[tuple[str, int], CertInfo] = {}
    for path, content in sorted(split_head(text).items()):
        for cert in parse_certificates(path, content):
            seen.setdefault((cert.issuer, cert.serial), cert)
    return sorted(seen.values(), key=lambda c: c.not_after)


def _analyze(obs: Observations) -> list[Finding]:
    config = obs.config
    listing = obs.get("cert_files")
    if listing is None:
        return []
    if listing.status in ("missing", "error", "refused", "timeout") and not listing.stdout:
        return [finding(ID, Severity.INFO, "certificates not checked", [listing.why_not()])]
    _, refused = _readable(obs)
    found: list[Finding] = []
    if refused:
        found.append(
            finding(
                ID,
                Severity.INFO,
                f"{len(refused)} file(s) not read: the policy treats them as possible private keys",
                refused,
                cause="certificates should be named *.crt, cert*.pem or *chain*.pem",
            )
        )
    certs = _unique(obs)
    where = ", ".join(config.cert_dirs)
    if not certs:
        return [finding(ID, Severity.OK, f"no server certificates found under {where}"), *found]
    for cert in certs:
        days = cert.days_left(obs.now)
        if days > config.cert_days:
            continue
        expired = days < 0
        severity = Severity.CRITICAL if days < CRITICAL_DAYS else Severity.WARNING
        when = cert.not_after.strftime("%Y-%m-%d %H:%M UTC")
        title = (
            f"certificate for {cert.subject} expired {-days:.0f} day(s) ago ({when})"
            if expired
            else f"certificate for {cert.subject} expires in {days:.0f} day(s) ({when})"
        )
        found.append(
            finding(
                ID,
                severity,
                title,
                [
                    f"file: {cert.path}",
                    f"subject: {cert.subject}; names: {', '.join(cert.names) or '-'}",
                    f"issuer: {cert.issuer}; not after: {when}; serial {cert.serial:x}",
                ],
                cause="automatic renewal is not set up or failing (ACME client, timer, DNS or HTTP "
                "challenge), or the renewed certificate was not deployed to this path",
                steps=[
                    (
                        ["openssl", "x509", "-noout", "-dates", "-subject", "-in", cert.path],
                        "confirm the dates on the host",
                    ),
                    (["systemctl", "list-timers", "--all"], "is a renewal timer scheduled"),
                    (
                        ["journalctl", "-u", "certbot.service", "-n", "50", "--no-pager"],
                        "the last renewal attempt",
                    ),
                    (["certbot", "renew"], "renew certificates with certbot"),
                ],
            )
        )
    if any(f.severity is not Severity.INFO for f in found):
        return found
    soonest = certs[0]
    ok = finding(
        ID,
        Severity.OK,
        f"{len(certs)} certificate(s), none expiring within {config.cert_days} days",
        [f"soonest: {soonest.subject} in {soonest.days_left(obs.now):.0f} days ({soonest.path})"],
    )
    return [ok, *found]


SPEC = AnalyzerSpec(
    id=ID,
    description="TLS certificates on disk expiring within 14 days (TEND_DIAGNOSTICS_CERT_DIRS)",
    probes=_probes,
    follow_up=_follow_up,
    analyze=_analyze,
)
