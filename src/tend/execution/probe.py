"""Run one fixed read-only argv on hosts, again and again, for tend's own background work.

Monitoring probes every host every few seconds. It still goes through the execution path — the
argv is judged by the policy (it must be ``read``, for the service as a whole and for each host
with its tags) and runs on the same transports with a timeout — but a ``run_intent`` /
``run_result`` pair per host per round would flood the audit log. Instead one audit entry
(``monitor_probe`` by default, with the exact argv) is recorded per host per process lifetime,
before the first run on that host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tend.auth.models import Role
from tend.execution.audit import AuditEntry
from tend.execution.policy import Risk, validate_argv
from tend.execution.service import ExecutionService
from tend.execution.targets import HostSnapshot, hosts_by_name
from tend.execution.transports.base import CommandResult, CommandSpec, TransportError

GRACE = 5.0
"""Seconds allowed beyond the command's own timeout and the SSH connect timeouts."""

ACTOR = "tend"


class ProbeRefused(RuntimeError):
    """The policy does not judge the probe's argv ``read``; tend must not run it unattended."""


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """A probe's result on one host, or why there is none (``error_kind`` as in run results)."""

    result: CommandResult | None = None
    error: str | None = None
    error_kind: str | None = None


class ReadOnlyProbe:
    """One argv, judged ``read`` once, run on hosts through the execution service's transports."""

    def __init__(
        self,
        execution: ExecutionService,
        argv: Sequence[str],
        *,
        timeout: float,
        output_cap: int,
        event: str = "monitor_probe",
    ) -> None:
        """Judge the argv and get ready to run it.

        Args:
            execution: The execution service (policy, audit, transports, settings).
            argv: The fixed argv.
            timeout: Seconds the command may run on a host.
            output_cap: Most bytes of output kept.
            event: The audit event recorded once per host.

        Raises:
            ProbeRefused: When the policy does not judge the argv ``read`` for a viewer.
            InvalidArgvError: When the argv is malformed.
        """
        self.argv = tuple(validate_argv(argv))
        decision = execution.judge(self.argv, Role.VIEWER, []).decision
        if decision.risk is not Risk.READ:
            msg = f"the policy judges the probe {decision.risk.value}, not read: {decision.reason}"
            raise ProbeRefused(msg)
        self.reason = decision.reason
        self._execution = execution
        self.timeout = timeout
        self._output_cap = output_cap
        self._event = event
        self._audited: set[str] = set()
        self._verdicts: dict[tuple[str, str, tuple[str, ...]], str | None] = {}
        self._lock = asyncio.Lock()

    def refusal(self, host: HostSnapshot) -> str | None:
        """Why the policy forbids the probe on this host (its tags may matter), or ``None``."""
        key = (host.name, host.transport, host.tags)
        if key not in self._verdicts:
            decision = self._execution.judge(self.argv, Role.VIEWER, [host]).decision
            self._verdicts[key] = (
                None
                if decision.risk is Risk.READ
                else f"the policy judges the probe {decision.risk.value} here: {decision.reason}"
            )
        return self._verdicts[key]

    async def _record_once(self, host: HostSnapshot) -> None:
        if host.name in self._audited:
            return
        async with self._lock:  # two first rounds at once still record one entry
            if host.name in self._audited:
                return
            await self._execution.audit.append(
                AuditEntry(
                    event=self._event,
                    actor=ACTOR,
                    actor_role=Role.VIEWER.value,
                    host=host.name,
                    argv=self.argv,
                    risk=Risk.READ.value,
                    detail=f"{self.reason}; recorded once per host while this process runs",
                )
            )
            self._audited.add(host.name)

    async def _inventory(self, host: HostSnapshot) -> Mapping[str, HostSnapshot]:
        names = ExecutionService._jump_names([host])  # the same hop parsing as runs
        if not names:
            return {}
        async with self._execution.database.session() as session:
            return await hosts_by_name(session, names)

    async def run(self, host: HostSnapshot) -> ProbeOutcome:
        """Run the probe on a host; failures come back in the outcome, never raised."""
        refused = self.refusal(host)
        if refused is not None:
            return ProbeOutcome(error=refused, error_kind="forbidden")
        try:
            await self._record_once(host)
        except Exception as exc:  # nothing runs unrecorded: the database may be down
            return ProbeOutcome(error=f"audit log unavailable: {exc}", error_kind="audit")
        try:
            inventory = await self._inventory(host)
        except Exception as exc:  # jump hosts named by the inventory cannot be looked up
            return ProbeOutcome(error=f"inventory unavailable: {exc}", error_kind="other")
        settings = self._execution.settings
        spec = CommandSpec(argv=list(self.argv), timeout=self.timeout, output_cap=self._output_cap)
        hops = 1 + len((host.proxy_jump or "").split(","))
        bound = self.timeout + settings.ssh_connect_timeout * hops + GRACE
        try:
            transport = self._execution.transports.for_host(host, inventory)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives as the command finishes, and a cancelled job must stop.
            async with asyncio.timeout(bound):
                result = await transport.run(spec)
        except TransportError as exc:
            return ProbeOutcome(error=exc.message, error_kind=exc.kind.value)
        except TimeoutError:
            return ProbeOutcome(
                error=f"{host.name}: no answer within {bound:.0f} s", error_kind="timeout"
            )
        except (OSError, ValueError) as exc:
            return ProbeOutcome(error=f"{host.name}: {exc}", error_kind="other")
        return ProbeOutcome(result=result)
