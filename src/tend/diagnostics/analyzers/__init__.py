"""The analyzers, one module each, registered once here in the order reports list them.

The API (``GET /api/v1/diagnostics/analyzers``), the CLI and the assistant read this registry.
"""

from __future__ import annotations

from collections.abc import Mapping

from tend.diagnostics.analyzers import (
    certificates,
    clock,
    disk,
    failed_units,
    listening_ports,
    load,
    memory,
    ssh_bruteforce,
    swap,
    updates,
    zombies,
)
from tend.diagnostics.findings import AnalyzerSpec

_SPECS = [
    disk.SPEC,
    memory.SPEC,
    failed_units.SPEC,
    load.SPEC,
    zombies.SPEC,
    swap.SPEC,
    clock.SPEC,
    updates.SPEC,
    ssh_bruteforce.SPEC,
    listening_ports.SPEC,
    certificates.SPEC,
]

ANALYZERS: dict[str, AnalyzerSpec] = {spec.id: spec for spec in _SPECS}


def describe() -> Mapping[str, AnalyzerSpec]:
    """Return the registry (read-only view for routers, the CLI and the assistant)."""
    return ANALYZERS
