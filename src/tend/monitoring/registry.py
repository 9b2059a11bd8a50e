"""Every metric tend collects, described once: name, unit, description, labels.

The API, the Prometheus exposition, alert rules and the assistant's tool docs all read this
registry; a collector may only emit metrics named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from tend.execution.targets import HostSnapshot

Unit = Literal["percent", "bytes", "bytes_per_second", "count", "per_second", "seconds", "boolean"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its name, unit, a one-line description and the labels it carries."""

    name: str
    unit: Unit
    description: str
    labels: tuple[str, ...] = ()


def _m(name: str, unit: Unit, description: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, unit, description, labels)


_SPECS = [
    _m("cpu_usage_percent", "percent", "CPU time in use over the interval, all cores"),
    _m("cpu_core_usage_percent", "percent", "CPU time in use over the interval, per core", "cpu"),
    _m("cpu_iowait_percent", "percent", "CPU time waiting for I/O over the interval"),
    _m("cpu_steal_percent", "percent", "CPU time stolen by the hypervisor over the interval"),
    _m("cpu_count", "count", "logical CPUs"),
    _m("load1", "count", "load average over 1 minute"),
    _m("load5", "count", "load average over 5 minutes"),
    _m("load15", "count", "load average over 15 minutes"),
    _m("memory_total_bytes", "bytes", "physical memory"),
    _m("memory_available_bytes", "bytes", "memory available to new work without swapping"),
    _m("memory_available_percent", "percent", "available memory as a share of the total"),
    _m("swap_total_bytes", "bytes", "swap space"),
    _m("swap_used_bytes", "bytes", "swap space in use"),
    _m("swap_used_percent", "percent", "swap in use as a share of the total"),
    _m("swap_in_bytes_per_second", "bytes_per_second", "pages swapped in"),
    _m("swap_out_bytes_per_second", "bytes_per_second", "pages swapped out"),
    _m("filesystem_size_bytes", "bytes", "filesystem size", "mount"),
    _m("filesystem_avail_bytes", "bytes", "filesystem space available to users", "mount"),
    _m("filesystem_used_percent", "percent", "filesystem space in use", "mount"),
    _m("filesystem_inodes_used_percent", "percent", "filesystem inodes in use", "mount"),
    _m("disk_read_bytes_per_second", "bytes_per_second", "bytes read from a disk", "device"),
    _m("disk_write_bytes_per_second", "bytes_per_second", "bytes written to a disk", "device"),
    _m(
        "network_receive_bytes_per_second",
        "bytes_per_second",
        "bytes received on an interface",
        "interface",
    ),
    _m(
        "network_transmit_bytes_per_second",
        "bytes_per_second",
        "bytes sent on an interface",
        "interface",
    ),
    _m(
        "network_errors_per_second",
        "per_second",
        "receive and transmit errors and drops on an interface",
        "interface",
    ),
    _m("processes_total", "count", "processes"),
    _m("processes_zombie", "count", "zombie processes"),
    _m("uptime_seconds", "seconds", "time since boot"),
    _m("systemd_failed_units", "count", "failed systemd units (absent without systemd)"),
    _m("reboot_required", "boolean", "1 when the system asks for a reboot"),
    _m("host_up", "boolean", "1 when the last collection succeeded"),
]

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one metric; ``labels`` are sorted ``(key, value)`` pairs."""

    metric: str
    value: float
    labels: Labels = ()

    @classmethod
    def of(cls, metric: str, value: float, **labels: str) -> Sample:
        """Build a sample, checking the metric and its labels against the registry.

        Raises:
            KeyError: For a metric the registry does not know.
            ValueError: When the labels differ from the metric's.
        """
        spec = METRICS[metric]
        if set(labels) != set(spec.labels):
            msg = f"{metric} takes labels {spec.labels}, got {tuple(labels)}"
            raise ValueError(msg)
        return cls(metric, float(value), tuple(sorted(labels.items())))


@dataclass(slots=True)
class Snapshot:
    """One collection of one host.

    ``samples`` are the numbers (stored as series); ``info`` holds what is not a number and is
    only shown live: ``top_cpu`` / ``top_memory`` (lists of ``{pid, name, user, cpu_percent,
    memory_bytes}``), ``failed_units`` (names), ``reboot_required_by`` (packages).
    ``error`` is set when the collection failed in whole or in part.
    """

    host: str
    at: datetime
    samples: list[Sample] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def value(self, metric: str, **labels: str) -> float | None:
        """Return one sample's value, or ``None`` when it was not collected."""
        key = tuple(sorted(labels.items()))
        for sample in self.samples:
            if sample.metric == metric and sample.labels == key:
                return sample.value
        return None


class Collector(Protocol):
    """Collects one host; implementations keep counters between calls to compute rates."""

    async def collect(self, host: HostSnapshot) -> Snapshot:
        """Collect the host now; failures are reported in ``Snapshot.error``, never raised."""
        ...


def describe() -> Mapping[str, MetricSpec]:
    """Return the registry (read-only view for routers and docs)."""
    return METRICS
