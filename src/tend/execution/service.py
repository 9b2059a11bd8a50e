"""The one execution path: validate -> policy -> audit intent -> run or approve or refuse -> audit.

Every caller (API, CLI, assistant, later MCP and alert rules) goes through ``ExecutionService``;
nothing else reaches a transport.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tend.auth.models import Role
from tend.db import Database
from tend.errors import Forbidden
from tend.execution.approvals import create_approval
from tend.execution.audit import AuditEntry, AuditLog
from tend.execution.connect import Transports
from tend.execution.fanout import fan_out
from tend.execution.policy import PolicyDecision, PolicyRules, Risk, evaluate, validate_argv
from tend.execution.schemas import (
    ApprovalOutcome,
    ApprovalPending,
    HostRunResult,
    PolicyDecisionPublic,
    RunRequest,
    RunResponse,
)
from tend.execution.targets import HostSnapshot, hosts_by_name, resolve_targets
from tend.execution.transports.base import CommandResult, CommandSpec, TransportError
from tend.settings import Settings

logger = logging.getLogger("tend.execution")

_GRACE = 5.0


BeforeHost = Callable[[HostSnapshot], Awaitable[HostRunResult | None]]
DecisionHook = Callable[[ApprovalOutcome], Awaitable[None]]


class PolicyRefused(Forbidden):
    """The policy forbids this command (403, with the reason)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: a user with the role in force for this request."""

    user_id: int
    username: str
    role: Role


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: HostRunResult
    stdout_sha256: str | None = None
    stderr_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The policy's decision over all selected hosts (the riskiest one wins)."""

    decision: PolicyDecision
    host: str | None
    four_eyes: bool


def to_public(verdict: Verdict) -> PolicyDecisionPublic:
    """Render a verdict for clients."""
    decision = verdict.decision
    return PolicyDecisionPublic(
        risk=decision.risk,
        reason=decision.reason,
        command=decision.command,
        wrappers=list(decision.wrappers),
        rule=decision.rule,
        host=verdict.host,
        approval_required=decision.risk is Risk.CHANGE,
        four_eyes=verdict.four_eyes,
    )


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def result_of(host: str, result: CommandResult) -> HostRunResult:
    """Describe a finished command for clients."""
    if result.timed_out:
        status = "timeout"
    elif result.exit_code == 0:
        status = "ok"
    else:
        status = "failed"
    return HostRunResult(
        host=host,
        status=status,
        exit_code=result.exit_code,
        signal=result.signal,
        stdout=_text(result.stdout.data),
        stderr=_text(result.stderr.data),
        stdout_bytes=result.stdout.total_bytes,
        stderr_bytes=result.stderr.total_bytes,
        stdout_truncated=result.stdout.truncated,
        stderr_truncated=result.stderr.truncated,
        duration=round(result.duration, 6),
    )


class ExecutionService:
    """Judges, records and runs commands; owns nothing but references to shared resources."""

    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        audit: AuditLog,
        transports: Transports,
        rules: PolicyRules | None,
    ) -> None:
        """Wire the service.

        Args:
            settings: Server settings (limits, four-eyes tags).
            database: The database.
            audit: The audit log.
            transports: Hands out a transport per host.
            rules: Configured policy rules, if any.
        """
        self.settings = settings
        self.database = database
        self.audit = audit
        self.transports = transports
        self.rules = rules
        # Awaited after a human approves (and the run ends) or denies: e.g. a conversation
        # waiting for the decision resumes. A failing hook is logged, never undoes a decision.
        self.decision_hooks: list[DecisionHook] = []

    # -- policy -----------------------------------------------------------------------------

    def _protected_paths(self) -> list[str]:
        paths = [self.settings.data_dir.expanduser().resolve()]
        policy = self.settings.effective_policy_file()
        if policy is not None:
            paths.append(policy.resolve())
        names = {str(p) for p in paths}
        home = str(Path.home())
        names |= {"~" + name.removeprefix(home) for name in names if name.startswith(home + "/")}
        return sorted(names)

    def _touches_tend(self, argv: Sequence[str], host: HostSnapshot) -> PolicyDecision | None:
        """Refuse, on the machine tend runs on, any argv naming tend's own data or policy."""
        if host.transport != "local":
            return None
        for path in self._protected_paths():
            # The path itself or anything under it, wherever it appears in an argument
            # (``--file=PATH/x``, ``PATH;``), but not a sibling such as ``PATH-old``.
            named = re.compile(re.escape(path) + r"(?![^/\s'\";:,=)\]}|&<>])")
            if any(named.search(arg) for arg in argv):
                return PolicyDecision(
                    risk=Risk.FORBIDDEN,
                    reason=f"the command names {path}, where tend keeps its policy, audit and keys",
                    command=Path(argv[0]).name,
                    wrappers=[],
                    rule="tend-self-protection",
                )
        return None

    def judge(self, argv: Sequence[str], role: Role, hosts: Sequence[HostSnapshot]) -> Verdict:
        """Evaluate the policy for every host (tags differ per host); the riskiest wins.

        Args:
            argv: The command.
            role: The caller's role.
            hosts: The selected hosts (may be empty for a host-less check).

        Returns:
            The verdict.
        """
        four_eyes = any(tag in self.settings.four_eyes_tags for h in hosts for tag in h.tags)
        if not hosts:
            return Verdict(evaluate(argv, role=role.value, rules=self.rules), None, four_eyes)
        worst: Verdict | None = None
        for host in hosts:
            decision = self._touches_tend(argv, host) or evaluate(
                argv, role=role.value, host_tags=host.tags, rules=self.rules
            )
            if worst is None or decision.risk > worst.decision.risk:
                worst = Verdict(decision, host.name, four_eyes)
        assert worst is not None
        return worst

    async def check(self, caller: Caller, argv: Sequence[str], host: str | None) -> Verdict:
        """Judge an argv for a host (or none) without running anything.

        Args:
            caller: Who asks.
            argv: The command.
            host: A host name, or ``None``.

        Returns:
            The verdict.
        """
        validate_argv(argv)
        hosts: list[HostSnapshot] = []
        if host is not None:
            async with self.database.session() as session:
                hosts = await resolve_targets(session, [host])
        return self.judge(argv, caller.role, hosts)

    # -- requests ---------------------------------------------------------------------------

    async def prepare(
        self, caller: Caller, request: RunRequest
    ) -> tuple[list[HostSnapshot], Verdict]:
        """Resolve targets and judge the request; refuse what the caller may not do.

        Args:
            caller: Who asks.
            request: The run request.

        Returns:
            The hosts and the verdict (``read`` or ``change``).

        Raises:
            PolicyRefused: When the policy forbids the command (recorded in the audit log).
            Forbidden: When a viewer asks for a change (recorded in the audit log).
        """
        async with self.database.session() as session:
            hosts = await resolve_targets(session, request.targets)
        verdict = self.judge(request.argv, caller.role, hosts)
        decision = verdict.decision
        if decision.risk is Risk.FORBIDDEN or (
            decision.risk is Risk.CHANGE and not caller.role.allows(Role.OPERATOR)
        ):
            refused_by_role = decision.risk is Risk.CHANGE
            detail = (
                f"viewers cannot request changes: {decision.reason}"
                if refused_by_role
                else decision.reason
            )
            await self.audit.append_many(
                [
                    AuditEntry(
                        event="refused",
                        actor=caller.username,
                        actor_role=caller.role.value,
                        host=host.name,
                        argv=request.argv,
                        risk=decision.risk.value,
                        detail=detail,
                    )
                    for host in hosts
                ]
            )
            if refused_by_role:
                raise Forbidden(detail)
            raise PolicyRefused(
                {
                    "risk": decision.risk.value,
                    "reason": decision.reason,
                    "command": decision.command,
                }
            )
        return hosts, verdict

    async def request_run(
        self, caller: Caller, request: RunRequest
    ) -> RunResponse | ApprovalPending:
        """Run a ``read`` now, turn a ``change`` into a pending approval, refuse the rest.

        Args:
            caller: Who asks.
            request: The run request.

        Returns:
            The run's results, or the pending approval.
        """
        hosts, verdict = await self.prepare(caller, request)
        if verdict.decision.risk is Risk.CHANGE:
            return await create_approval(self, caller, request, hosts, verdict)
        return await self.execute(caller, request.argv, hosts, request.timeout, verdict)

    # -- running ----------------------------------------------------------------------------

    async def stream(
        self,
        caller: Caller,
        argv: Sequence[str],
        hosts: Sequence[HostSnapshot],
        per_host_timeout: float,
        verdict: Verdict,
        *,
        run_id: str | None = None,
        approval_id: str | None = None,
        before_host: BeforeHost | None = None,
    ) -> AsyncIterator[HostRunResult]:
        """Run on every host, yielding each host's result as it finishes.

        Intents for all hosts are recorded (one group commit) before anything runs.

        Args:
            caller: Who asks.
            argv: The exact argv to run.
            hosts: The hosts.
            per_host_timeout: Per-host timeout, seconds.
            verdict: The policy verdict (recorded with each entry).
            run_id: Id of this run (generated when omitted).
            approval_id: The approval that allowed it, for changes.
            before_host: Awaited just before a host runs; a result it returns is used instead
                of running (jobs use it so a redelivered job never runs a host twice).

        Yields:
            Per-host results in completion order.
        """
        run = run_id or uuid.uuid4().hex

        def entry(event: str, host: HostSnapshot, **fields: Any) -> AuditEntry:
            return AuditEntry(
                event=event,
                actor=caller.username,
                actor_role=caller.role.value,
                host=host.name,
                argv=argv,
                risk=verdict.decision.risk.value,
                approval_id=approval_id,
                run_id=run,
                **fields,
            )

        await self.audit.append_many(
            [entry("run_intent", host, detail=verdict.decision.reason) for host in hosts]
        )
        inventory: dict[str, HostSnapshot] = {}
        jump_names = self._jump_names(hosts)
        if jump_names:  # most runs have no jump hosts: no query for them
            async with self.database.session() as session:
                inventory = await hosts_by_name(session, jump_names)

        async def one(host: HostSnapshot) -> HostRunResult:
            if before_host is not None:
                instead = await before_host(host)
                if instead is not None:
                    return instead
            outcome = await self._run_on_host(host, argv, per_host_timeout, inventory)
            result = outcome.result
            await self.audit.append(
                entry(
                    "run_result",
                    host,
                    detail=result.error,
                    exit_code=result.exit_code,
                    signal=result.signal,
                    duration=result.duration,
                    stdout_bytes=result.stdout_bytes,
                    stderr_bytes=result.stderr_bytes,
                    stdout_sha256=outcome.stdout_sha256,
                    stderr_sha256=outcome.stderr_sha256,
                )
            )
            return result

        async for result in fan_out(hosts, one, concurrency=self.settings.fanout_concurrency):
            yield result

    async def execute(
        self,
        caller: Caller,
        argv: Sequence[str],
        hosts: Sequence[HostSnapshot],
        per_host_timeout: float,
        verdict: Verdict,
        *,
        approval_id: str | None = None,
    ) -> RunResponse:
        """Run to completion on every host (consumes :meth:`stream`).

        Args:
            caller: Who asks.
            argv: The exact argv.
            hosts: The hosts.
            per_host_timeout: Per-host timeout, seconds.
            verdict: The policy verdict.
            approval_id: The approval that allowed it, for changes.

        Returns:
            The results, in host-name order.
        """
        run_id = uuid.uuid4().hex
        results = [
            result
            async for result in self.stream(
                caller,
                argv,
                hosts,
                per_host_timeout,
                verdict,
                run_id=run_id,
                approval_id=approval_id,
            )
        ]
        results.sort(key=lambda r: r.host)
        return RunResponse(
            run_id=run_id,
            risk=verdict.decision.risk,
            reason=verdict.decision.reason,
            ok=all(r.status == "ok" for r in results),
            results=results,
        )

    @staticmethod
    def _jump_names(hosts: Sequence[HostSnapshot]) -> list[str]:
        names: set[str] = set()
        for host in hosts:
            for hop in (host.proxy_jump or "").split(","):
                if hop:
                    names.add(hop.rpartition("@")[2].split(":")[0].strip("[]"))
        return sorted(names)

    async def _run_on_host(
        self,
        host: HostSnapshot,
        argv: Sequence[str],
        per_host_timeout: float,
        inventory: Mapping[str, HostSnapshot],
    ) -> _Outcome:
        spec = CommandSpec(
            argv=list(argv), timeout=per_host_timeout, output_cap=self.settings.output_cap_bytes
        )
        hops = 1 + len((host.proxy_jump or "").split(","))
        bound = per_host_timeout + self.settings.ssh_connect_timeout * hops + _GRACE
        try:
            transport = self.transports.for_host(host, inventory)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives as the command finishes, and a cancelled job must stop.
            async with asyncio.timeout(bound):
                result = await transport.run(spec)
        except TransportError as exc:
            return _Outcome(
                HostRunResult(
                    host=host.name, status="error", error_kind=exc.kind.value, error=exc.message
                )
            )
        except TimeoutError:
            return _Outcome(
                HostRunResult(
                    host=host.name,
                    status="timeout",
                    error_kind="timeout",
                    error=f"{host.name}: no answer within {bound:.0f} s",
                    duration=bound,
                )
            )
        except (OSError, ValueError) as exc:
            return _Outcome(
                HostRunResult(
                    host=host.name, status="error", error_kind="other", error=f"{host.name}: {exc}"
                )
            )
        return _Outcome(result_of(host.name, result), result.stdout.sha256, result.stderr.sha256)
