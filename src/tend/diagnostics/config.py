"""The knobs analyzers read, taken from settings once per diagnosis (tests build them directly)."""

from __future__ import annotations

from dataclasses import dataclass

from tend.settings import Settings

DEFAULT_CERT_DIRS = (
    "/etc/letsencrypt/live",
    "/etc/ssl",
    "/etc/nginx",
    "/etc/apache2",
    "/etc/haproxy",
    "/etc/pki/tls/certs",
)


@dataclass(frozen=True, slots=True)
class DiagnosticsConfig:
    """Limits and windows of one diagnosis.

    Attributes:
        cert_dirs: Directories searched for TLS certificates.
        cert_days: Certificates expiring within this many days are reported.
        sample_seconds: Interval of the CPU, I/O and swap sample (``vmstat N 2``).
        probe_timeout: Timeout of each command, seconds.
        log_hours: How far back kernel and auth logs are read.
    """

    cert_dirs: tuple[str, ...] = DEFAULT_CERT_DIRS
    cert_days: int = 14
    sample_seconds: int = 2
    probe_timeout: float = 20.0
    log_hours: int = 24

    @classmethod
    def from_settings(cls, settings: Settings) -> DiagnosticsConfig:
        """Read the ``TEND_DIAGNOSTICS_*`` settings."""
        return cls(
            cert_dirs=tuple(settings.diagnostics_cert_dirs),
            cert_days=settings.diagnostics_cert_days,
            sample_seconds=settings.diagnostics_sample_seconds,
            probe_timeout=settings.diagnostics_probe_timeout,
            log_hours=settings.diagnostics_log_hours,
        )
