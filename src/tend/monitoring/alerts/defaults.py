"""The alert rules a new tend starts with (migration 0008 creates them once).

Plain data, so the migration can read it without importing the ORM. Deleting a default rule
later keeps it deleted; editing one keeps the edit.
"""

from __future__ import annotations

from typing import Any, Final


def _rule(
    name: str,
    metric: str,
    comparison: str,
    *,
    severity: str,
    for_seconds: float,
    description: str,
    threshold: float | None = None,
    threshold_per_cpu: float | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "metric": metric,
        "match_labels": {},
        "comparison": comparison,
        "threshold": threshold,
        "threshold_per_cpu": threshold_per_cpu,
        "for_seconds": for_seconds,
        "severity": severity,
        "hosts": [],
        "tags": [],
        "labels": {},
        "notify": [],
        "enabled": True,
    }


DEFAULT_RULES: Final[tuple[dict[str, Any], ...]] = (
    _rule(
        "filesystem-full",
        "filesystem_used_percent",
        ">",
        threshold=90.0,
        severity="warning",
        for_seconds=300.0,
        description="a filesystem is more than 90 % full",
    ),
    _rule(
        "filesystem-inodes-full",
        "filesystem_inodes_used_percent",
        ">",
        threshold=90.0,
        severity="warning",
        for_seconds=300.0,
        description="a filesystem has used more than 90 % of its inodes",
    ),
    _rule(
        "memory-low",
        "memory_available_percent",
        "<",
        threshold=5.0,
        severity="critical",
        for_seconds=300.0,
        description="less than 5 % of memory is available",
    ),
    _rule(
        "load-high",
        "load15",
        ">",
        threshold_per_cpu=2.0,
        severity="warning",
        for_seconds=600.0,
        description="the 15-minute load is above twice the number of CPUs",
    ),
    _rule(
        "host-unreachable",
        "host_up",
        "==",
        threshold=0.0,
        severity="critical",
        for_seconds=60.0,
        description="the host could not be collected",
    ),
    _rule(
        "systemd-failed-units",
        "systemd_failed_units",
        ">",
        threshold=0.0,
        severity="warning",
        for_seconds=60.0,
        description="systemd reports failed units",
    ),
)
