"""Probes several analyzers share; each runs once per diagnosis however many analyzers use it.

Every argv starts with ``env LC_ALL=C`` so output is parsed the same on every host whatever
its locale (decimal commas and translated headers would break parsers otherwise).
"""

from __future__ import annotations

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import Probe

PROC_FILES = (
    "/proc/loadavg",
    "/proc/meminfo",
    "/proc/vmstat",
    "/proc/stat",
    "/proc/mounts",
    "/proc/pressure/memory",
    "/proc/pressure/io",
)


def c_locale(*argv: str) -> tuple[str, ...]:
    """Prefix an argv with ``env LC_ALL=C``."""
    return ("env", "LC_ALL=C", *argv)


def clock() -> Probe:
    """The host's UTC time (first probe: it also tells whether the host answers at all)."""
    return Probe("clock", ("date", "-u", "+%s.%N"), timeout=10.0)


def procfs(config: DiagnosticsConfig) -> Probe:
    """Small /proc files in one go; ``head -v`` names each file before its content."""
    return Probe(
        "procfs", c_locale("head", "-v", "-n", "400", "--", *PROC_FILES), config.probe_timeout
    )


def processes(config: DiagnosticsConfig) -> Probe:
    """Every process: pid, parent, user, state, %CPU (over its life), %MEM, RSS KiB, age, name."""
    return Probe(
        "ps",
        c_locale("ps", "-ww", "-eo", "pid=,ppid=,user:32=,stat=,pcpu=,pmem=,rss=,etimes=,comm="),
        config.probe_timeout,
    )


def vmstat(config: DiagnosticsConfig) -> Probe:
    """CPU, I/O wait and swap traffic over ``sample_seconds`` (line 2 of ``vmstat N 2``)."""
    seconds = config.sample_seconds
    return Probe("vmstat", c_locale("vmstat", str(seconds), "2"), seconds + config.probe_timeout)


def kernel_log(config: DiagnosticsConfig) -> Probe:
    """Kernel warnings and errors of the log window from the journal."""
    return Probe(
        "kernel_log",
        c_locale(
            "journalctl",
            "-k",
            "-q",
            "--no-pager",
            "-o",
            "short-iso",
            "-p",
            "warning",
            f"--since=-{config.log_hours}h",
            "-n",
            "5000",
        ),
        config.probe_timeout,
    )


def dmesg(config: DiagnosticsConfig) -> Probe:
    """The kernel ring buffer's warnings and errors (when the journal has no kernel messages)."""
    return Probe(
        "dmesg",
        c_locale("dmesg", "--time-format", "iso", "-l", "emerg,alert,crit,err,warn"),
        config.probe_timeout,
    )
