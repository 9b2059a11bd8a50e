"""Disk and inode pressure: filesystems filling up, with the largest directories under them."""

from __future__ import annotations

from dataclasses import dataclass

from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import AnalyzerSpec, Finding, Observations, Probe, Severity, finding
from tend.diagnostics.parsing import human_bytes, split_head
from tend.diagnostics.probes import c_locale, procfs

ID = "disk"
WARNING_PERCENT = 90
CRITICAL_PERCENT = 95
MAX_DU_MOUNTS = 3
TOP_DIRS = 10
# Filesystems that are full by design or cannot be written: never "pressure".
_SKIP_TYPES = frozenset({"squashfs", "iso9660", "udf", "devtmpfs", "ramfs", "erofs", "cramfs"})
_CAUSES = (
    ("/var/log", "log files are growing (rotation missing or a service logging too much)"),
    ("/var/lib/docker", "container images, volumes or logs under /var/lib/docker"),
    ("/var/lib/containerd", "container images under /var/lib/containerd"),
    ("/var/cache", "package or application caches"),
    ("/var/lib/postgresql", "database files under /var/lib/postgresql"),
    ("/var/lib/mysql", "database files under /var/lib/mysql"),
    ("/tmp", "temporary files left behind"),  # noqa: S108 - a path to recognise, not to use
    ("/home", "users' files"),
)


@dataclass(frozen=True, slots=True)
class Usage:
    """One ``df -P`` line: ``used``/``total`` are KiB (or inodes for ``df -i``)."""

    source: str
    total: int
    used: int
    available: int
    percent: int
    mount: str


def parse_df(text: str) -> list[Usage]:
    """Parse ``df -P -k`` or ``df -P -i`` output (mount points may contain spaces)."""
    rows: list[Usage] = []
    for line in text.splitlines()[1:]:
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[4].endswith("%"):
            continue
        try:
            total, used, available = int(parts[1]), int(parts[2]), int(parts[3])
        except ValueError:
            continue
        percent_text = parts[4].rstrip("%")
        if not percent_text.isdigit() or total <= 0:
            continue
        rows.append(Usage(parts[0], total, used, available, int(percent_text), parts[5]))
    return rows


def parse_mounts(text: str) -> dict[str, tuple[str, bool]]:
    """Parse ``/proc/mounts`` into ``{mount point: (fs type, read-only)}``."""
    mounts: dict[str, tuple[str, bool]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            point = parts[1].replace("\\040", " ").replace("\\011", "\t")
            mounts[point] = (parts[2], "ro" in parts[3].split(","))
    return mounts


def parse_du(text: str) -> list[tuple[int, str]]:
    """Parse ``du`` output into ``(size, path)`` pairs, largest first."""
    sizes: list[tuple[int, str]] = []
    for line in text.splitlines():
        size, _, path = line.partition("\t")
        if size.strip().isdigit() and path:
            sizes.append((int(size), path))
    return sorted(sizes, key=lambda item: (-item[0], item[1]))


def _probes(config: DiagnosticsConfig) -> list[Probe]:
    timeout = config.probe_timeout
    return [
        Probe("df", c_locale("df", "-P", "-k"), timeout),
        Probe("df_inodes", c_locale("df", "-P", "-i"), timeout),
        procfs(config),
    ]


def _watched(obs: Observations, probe_id: str) -> list[Usage]:
    """Usage rows of writable, real filesystems."""
    text = obs.text(probe_id)
    if text is None:
        return []
    procs = obs.text("procfs")
    mounts = parse_mounts(split_head(procs).get("/proc/mounts", "")) if procs else {}
    rows = []
    for row in parse_df(text):
        fs_type, read_only = mounts.get(row.mount, ("", False))
        if fs_type in _SKIP_TYPES or read_only:
            continue
        rows.append(row)
    return rows


def _du_probe(obs: Observations, mount: str, inodes: bool) -> Probe:
    config = obs.config
    unit = ("--inodes",) if inodes else ("-k",)
    probe_id = f"du{'_inodes' if inodes else ''}:{mount}"
    return Probe(
        probe_id, c_locale("du", "-x", "-d", "1", *unit, "--", mount), config.probe_timeout
    )


def _follow_up(obs: Observations) -> list[Probe]:
    full = [r for r in _watched(obs, "df") if r.percent >= WARNING_PERCENT]
    full_inodes = [r for r in _watched(obs, "df_inodes") if r.percent >= WARNING_PERCENT]
    probes = [_du_probe(obs, r.mount, False) for r in full[:MAX_DU_MOUNTS]]
    probes += [_du_probe(obs, r.mount, True) for r in full_inodes[:MAX_DU_MOUNTS]]
    return probes


def _largest(obs: Observations, mount: str, inodes: bool) -> tuple[list[str], list[str]]:
    """Evidence lines for the largest directories of a mount, and their paths."""
    probe_id = f"du{'_inodes' if inodes else ''}:{mount}"
    output = obs.get(probe_id)
    if output is None:
        return [], []
    sizes = [(size, path) for size, path in parse_du(output.stdout) if path != mount]
    if not sizes:
        return [f"largest directories: {output.why_not()}"], []
    what = "inodes" if inodes else "space"
    lines = [f"largest directories under {mount} by {what}:"]
    for size, path in sizes[:TOP_DIRS]:
        amount = f"{size} inodes" if inodes else human_bytes(size * 1024)
        lines.append(f"  {amount:>12}  {path}")
    if output.status == "timeout":
        lines.append(f"  (du stopped after {output.probe.timeout:.0f} s; the list is incomplete)")
    return lines, [path for _, path in sizes[:TOP_DIRS]]


def _cause(paths: list[str], inodes: bool) -> str:
    for prefix, cause in _CAUSES:
        if paths and paths[0].startswith(prefix):
            return cause
    if inodes:
        return "very many small files (caches, session files, mail queues) in the largest directory"
    if paths:
        return f"most of the space is under {paths[0]}"
    return "the filesystem is filling up"


def _pressure(obs: Observations, row: Usage, line: str, inodes: bool) -> Finding:
    severity = Severity.CRITICAL if row.percent >= CRITICAL_PERCENT else Severity.WARNING
    largest, paths = _largest(obs, row.mount, inodes)
    if inodes:
        title = f"{row.mount} has used {row.percent} % of its inodes"
        detail = f"{row.used} of {row.total} inodes used, {row.available} free"
    else:
        title = f"{row.mount} is {row.percent} % full"
        detail = (
            f"{human_bytes(row.used * 1024)} of {human_bytes(row.total * 1024)} used, "
            f"{human_bytes(row.available * 1024)} available"
        )
    target = paths[0] if paths else row.mount
    steps: list[tuple[list[str], str]] = [
        (["du", "-x", "-h", "-d", "2", "--", target], "look one level deeper"),
        (["find", target, "-xdev", "-type", "f", "-size", "+100M"], "list files over 100 MB"),
        (["journalctl", "--disk-usage"], "see how much the journal takes"),
        (["journalctl", "--vacuum-size=200M"], "shrink the journal to 200 MB"),
    ]
    if inodes:
        steps[1] = (["find", target, "-xdev", "-type", "f", "-mtime", "+30"], "old small files")
    return finding(
        ID,
        severity,
        title,
        [f"df: {line}", detail, *largest],
        cause=_cause(paths, inodes),
        steps=steps,
    )


def _analyze(obs: Observations) -> list[Finding]:
    space = _watched(obs, "df")
    if not space:
        output = obs.get("df")
        why = output.why_not() if output else "df was not run"
        return [finding(ID, Severity.INFO, "filesystem usage unknown", [why])]
    inodes = _watched(obs, "df_inodes")
    lines = {r.mount: line for r, line in _lines(obs, "df")}
    inode_lines = {r.mount: line for r, line in _lines(obs, "df_inodes")}
    found = [
        _pressure(obs, r, lines.get(r.mount, ""), False)
        for r in space
        if r.percent >= WARNING_PERCENT
    ]
    found += [
        _pressure(obs, r, inode_lines.get(r.mount, ""), True)
        for r in inodes
        if r.percent >= WARNING_PERCENT
    ]
    if found:
        return found
    fullest = max(space, key=lambda r: r.percent)
    fullest_inodes = max(inodes, key=lambda r: r.percent) if inodes else None
    evidence = [f"{len(space)} filesystems; fullest {fullest.mount} at {fullest.percent} %"]
    if fullest_inodes is not None:
        evidence.append(f"most inodes used: {fullest_inodes.mount} at {fullest_inodes.percent} %")
    return [finding(ID, Severity.OK, f"every filesystem below {WARNING_PERCENT} %", evidence)]


def _lines(obs: Observations, probe_id: str) -> list[tuple[Usage, str]]:
    text = obs.text(probe_id) or ""
    pairs = []
    for line in text.splitlines()[1:]:
        rows = parse_df(f"header\n{line}")
        if rows:
            pairs.append((rows[0], " ".join(line.split())))
    return pairs


SPEC = AnalyzerSpec(
    id=ID,
    description="filesystems over 90 % full in space or inodes, with their largest directories",
    probes=_probes,
    follow_up=_follow_up,
    analyze=_analyze,
)
