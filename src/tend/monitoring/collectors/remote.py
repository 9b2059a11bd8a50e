"""Collect SSH hosts agentlessly: one read-only probe per round, parsed here on the server.

The probe (:mod:`.probe`) runs through the execution path (:class:`~tend.execution.probe.
ReadOnlyProbe`): judged ``read`` by the policy, recorded once per host in the audit log, run on
the pooled SSH transports with a timeout. Rates come from the counters of the host's previous
round, kept in memory per host.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tend.execution.probe import ReadOnlyProbe
from tend.execution.service import ExecutionService
from tend.execution.targets import HostSnapshot
from tend.monitoring.collectors.compute import build_snapshot
from tend.monitoring.collectors.probe import PROBE_ARGV
from tend.monitoring.collectors.procparse import parse_probe
from tend.monitoring.collectors.reading import Reading
from tend.monitoring.registry import Sample, Snapshot

PROBE_TIMEOUT = 8.0
"""Seconds the probe may run on a host (the default interval is 10 s)."""

PROBE_OUTPUT_CAP = 8 * 1024 * 1024
"""Most bytes of probe output kept (about 300 bytes per process)."""

_STDERR_SHOWN = 300


def _down(host: str, at: datetime, error: str) -> Snapshot:
    return Snapshot(host=host, at=at, samples=[Sample.of("host_up", 0)], error=error)


class RemoteCollector:
    """Collects SSH hosts through the execution service (implements ``Collector``)."""

    def __init__(self, execution: ExecutionService, *, timeout: float = PROBE_TIMEOUT) -> None:
        """Check the probe with the policy and get ready.

        Args:
            execution: The execution service.
            timeout: Seconds the probe may run on a host.

        Raises:
            ProbeRefused: When the policy does not judge the probe ``read`` (a policy file that
                forbids it): monitoring refuses to start rather than run it unjudged.
        """
        self._probe = ReadOnlyProbe(
            execution, PROBE_ARGV, timeout=timeout, output_cap=PROBE_OUTPUT_CAP
        )
        self._previous: dict[str, Reading] = {}

    def forget(self, host: str) -> None:
        """Drop a host's counters (deleted from the inventory)."""
        self._previous.pop(host, None)

    async def collect(self, host: HostSnapshot) -> Snapshot:
        """Probe the host once; an unreachable host or bad output is reported, never raised."""
        at = datetime.now(UTC)
        outcome = await self._probe.run(host)
        if outcome.result is None:
            return _down(host.name, at, outcome.error or "no result")
        result = outcome.result
        if result.timed_out:
            return _down(
                host.name, at, f"the probe did not finish within {self._probe.timeout:g} s"
            )
        reading = parse_probe(
            result.stdout.data.decode("utf-8", errors="replace"), time.monotonic()
        )
        if result.stdout.truncated:
            reading.errors["output"] = f"cut at {PROBE_OUTPUT_CAP} bytes"
        if reading.errors:
            stderr = result.stderr.data.decode("utf-8", errors="replace").strip()
            if stderr:
                reading.errors["stderr"] = stderr[:_STDERR_SHOWN]
            if result.exit_code not in (0, None):
                reading.errors["exit"] = f"the probe exited {result.exit_code}"
        snapshot = build_snapshot(host.name, at, reading, self._previous.get(host.name))
        usable = reading.cpu is not None or reading.memory_total is not None
        if usable:
            self._previous[host.name] = reading
        snapshot.samples.append(Sample.of("host_up", 1 if usable else 0))
        return snapshot
