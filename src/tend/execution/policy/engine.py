"""The policy engine: :func:`evaluate` judges an argv and applies the configured rules."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from tend.execution.policy.argv import UNKNOWN, command_name, validate_argv
from tend.execution.policy.knowledge import CHANGE, Context, Finding, display, judge_generic
from tend.execution.policy.model import PolicyDecision, Risk, max_risk
from tend.execution.policy.paths import SYSTEM_BIN_DIRS, normalise
from tend.execution.policy.registry import lookup
from tend.execution.policy.rules import Adjustment, PolicyRules, adjust
from tend.execution.policy.shells import judge_shell_string, too_deep

logger = logging.getLogger(__name__)


def judge_argv(argv: list[str], ctx: Context) -> list[Finding]:
    """Judge one argv with the knowledge base, recursing through wrappers via ``ctx``.

    Unknown commands are ``change``. Unless the command's spec says otherwise, any argument
    naming a secret raises the verdict to at least ``change``.

    Args:
        argv: A non-empty argv (already validated).
        ctx: The judging context.

    Returns:
        The findings; the most dangerous one decides.
    """
    deep = too_deep(ctx)
    if deep is not None:
        return deep
    if not argv[0]:
        return [ctx.verdict(CHANGE, "the command to run has an empty name", None, command='""')]
    if UNKNOWN in argv[0]:
        reason = "the command to run is only known at run time, so it cannot be judged"
        return [ctx.verdict(CHANGE, reason, None, command=argv[0])]
    name = command_name(argv[0])
    command = lookup(name)
    if command is None:
        findings = [ctx.verdict(CHANGE, f"{display(name)} is not a known command", argv)]
    elif command.judge is not None:
        findings = command.judge(argv, ctx)
    else:
        findings = judge_generic(command, argv, ctx)
    if "/" in argv[0]:
        program = normalise(argv[0])
        if "/" not in program or (program.rpartition("/")[0] or "/") not in SYSTEM_BIN_DIRS:
            reason = (
                f"{display(argv[0])} is outside the system program directories, "
                f"so it may not be the real {display(name)}"
            )
            findings.append(ctx.verdict(CHANGE, reason, argv))
    if command is None or command.check_secrets:
        allow_devices = command is not None and command.raw_devices_ok
        secret = ctx.secret(argv[1:], allow_devices=allow_devices)
        if secret is not None:
            findings.append(ctx.verdict(CHANGE, f"{display(name)} reads {secret}", argv))
    return findings


def _root_context() -> Context:
    return Context(dispatch=judge_argv, shell_judge=judge_shell_string)


def _decide(
    findings: Sequence[Finding], rules: PolicyRules | None, role: str, host_tags: Collection[str]
) -> PolicyDecision:
    applicable = rules.applicable(role, host_tags) if rules is not None else []
    adjusted = [
        (finding, adjust(finding.risk, finding.argv, applicable) if applicable else None)
        for finding in findings
    ]

    def final(item: tuple[Finding, Adjustment | None]) -> Risk:
        return item[1].risk if item[1] is not None else item[0].risk

    builtin = max_risk(*(finding.risk for finding in findings))
    outcome = max_risk(*(final(item) for item in adjusted))
    if outcome < builtin:
        candidates = [item for item in adjusted if item[0].risk == builtin]
    elif outcome > builtin:
        candidates = [item for item in adjusted if final(item) == outcome]
    else:
        candidates = [item for item in adjusted if final(item) == outcome == item[0].risk]
    finding, adjustment = candidates[0]
    reason, rule = finding.reason, None
    if outcome != builtin and adjustment is not None:
        rule = adjustment.rule
        if adjustment.note:
            reason = f"{reason}; {adjustment.note}"
    return PolicyDecision(
        risk=outcome,
        reason=reason,
        command=finding.command,
        wrappers=list(finding.wrappers),
        rule=rule,
    )


def evaluate(
    argv: Sequence[str],
    *,
    role: str = "operator",
    host_tags: Collection[str] = (),
    rules: PolicyRules | None = None,
) -> PolicyDecision:
    """Decide whether an argv may run: ``read`` at once, ``change`` after approval, or not at all.

    The argv is judged as parsed arguments, never as a string: wrappers (``sudo``, ``env``,
    ``timeout``, ``sh -c`` ...) are unwrapped and judged by what they run, every command in a
    shell string is judged, and the most dangerous part decides. Configured ``rules`` for the
    host's tags and the caller's role are applied last.

    Args:
        argv: The argument vector; ``argv[0]`` is the program.
        role: The caller's role, used only to select rules.
        host_tags: Tags of the target host, used only to select rules.
        rules: Configured rules, if any.

    Returns:
        The decision.

    Raises:
        InvalidArgvError: The argv is empty, has an empty ``argv[0]``, holds NUL or newline
            characters or exceeds 64 KiB. Nothing else is ever raised.
    """
    args = validate_argv(argv)
    tags = {host_tags} if isinstance(host_tags, str) else host_tags
    try:
        findings = judge_argv(args, _root_context())
        return _decide(findings, rules, role, tags)
    except Exception:
        logger.exception("policy evaluation failed for %r", args[:1])
        return PolicyDecision(
            risk=Risk.FORBIDDEN,
            reason="the policy engine failed to analyse the command, so it is refused",
            command=command_name(args[0]),
            wrappers=[],
            rule=None,
        )
