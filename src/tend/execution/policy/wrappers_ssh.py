"""``ssh``: the remote command is judged, and so are the options that run LOCAL commands.

``ssh -o ProxyCommand=CMD host`` runs ``CMD`` on this host through the shell before connecting,
as do ``LocalCommand`` (with ``PermitLocalCommand``) and ``KnownHostsCommand``; those values are
judged as local shell commands, so ``ssh -o 'ProxyCommand=rm -rf /' host`` is forbidden.
``-F FILE`` and ``-o Include=FILE`` read configuration that may hold such commands, and
``PKCS11Provider``/``SecurityKeyProvider``/``-I`` load a library into ssh: at least change.
OpenSSH parses options again after the host name (``ssh host -o ProxyCommand=CMD ls``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tend.execution.policy.argv import command_name
from tend.execution.policy.getopt import Getopt, getopt_long, option_table
from tend.execution.policy.knowledge import CommandSpec, Context, Finding, change, display, spec

_SSH = option_table(
    "-B -b -c -D -E -e -F -I -i -J -L -l -m -O -o -P -p -Q -R -S -W -w",
    "-1 -2 -4 -6 -A -a -C -f -G -g -K -k -M -N -n -q -s -T -t -V -v -X -x -Y -y",
)
_OPTION_RE = re.compile(r"\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*)", re.DOTALL)
_LOCAL_COMMANDS = frozenset({"proxycommand", "localcommand", "knownhostscommand"})
_LIBRARIES = frozenset({"pkcs11provider", "securitykeyprovider"})
_TOKEN_RE = re.compile(r"%(.)")


def _expand_tokens(command: str) -> str:
    """Replace ssh's ``%`` tokens: ``%d`` is the home directory, others are only known later."""

    def token(match: re.Match[str]) -> str:
        char = match.group(1)
        if char == "%":
            return "%"
        return "$HOME" if char == "d" else "$SSH_TOKEN"

    return _TOKEN_RE.sub(token, command)


def ssh_option_findings(
    name: str, options: Sequence[str], ctx: Context, argv: Sequence[str]
) -> list[Finding]:
    """Judge ``-o Key=value`` options of ``ssh``/``scp``/``sftp``.

    Args:
        name: The program (for reasons).
        options: The values given to ``-o``.
        ctx: The judging context.
        argv: The program's argv (for the findings).

    Returns:
        Findings for options that run local commands, read other configuration or load
        libraries (none for ordinary options).
    """
    findings: list[Finding] = []
    for option in options:
        match = _OPTION_RE.fullmatch(option)
        if match is None:
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        if key in _LOCAL_COMMANDS and value.lower() != "none":
            findings += change(ctx, argv, f"{name} -o {match.group(1)} runs a local command")
            findings += ctx.run_shell(_expand_tokens(value), name)
        elif key == "include":
            reason = f"{name} -o Include reads {display(value)}, which may run local commands"
            findings += change(ctx, argv, reason)
        elif key in _LIBRARIES:
            findings += change(ctx, argv, f"{name} -o {match.group(1)} loads a library")
    return findings


def _parse(argv: list[str]) -> tuple[Getopt, list[str]]:
    """Options before and after the host (as OpenSSH does), and the remote command."""
    first = getopt_long(argv, _SSH)
    if first.unknown is not None or not first.operands:
        return first, []
    host_index = first.index
    if host_index > 1 and argv[host_index - 1] == "--":
        return first, first.operands[1:]
    second = getopt_long(argv, _SSH, start=host_index + 1)
    merged = Getopt(first.options + second.options, [], second.index, second.unknown)
    return merged, second.operands


def ssh_local_findings(parsed: Getopt, ctx: Context, argv: list[str]) -> list[Finding]:
    """Findings for ssh options that act locally: ``-o``, ``-F``, ``-E`` and ``-I``."""
    findings = ssh_option_findings("ssh", parsed.values("-o"), ctx, argv)
    for config in parsed.values("-F"):
        reason = f"ssh -F reads {display(config)}, which may run local commands"
        findings += change(ctx, argv, reason)
    for log in parsed.values("-E"):
        findings += change(ctx, argv, f"ssh -E appends its log to {display(log)}")
    if parsed.has("-I"):
        findings += change(ctx, argv, "ssh -I loads a PKCS#11 library")
    return findings


def judge_ssh(argv: list[str], ctx: Context) -> list[Finding]:
    """``ssh [options] HOST [options] [COMMAND ...]``: at least change.

    The remote command is judged as a shell string (it is one on the remote side), local
    commands from ``-o`` are judged as local shell commands.
    """
    parsed, command = _parse(argv)
    if parsed.unknown is not None:
        return change(ctx, argv, f"ssh option {parsed.unknown} is not understood")
    findings = ssh_local_findings(parsed, ctx, argv)
    remote = [
        value
        for option in parsed.values("-o")
        if (match := _OPTION_RE.fullmatch(option)) is not None
        and match.group(1).lower() == "remotecommand"
        and (value := match.group(2).strip()).lower() != "none"
    ]
    text = " ".join(command) or (remote[-1] if remote else "")
    if not text:
        return [*findings, *change(ctx, argv, "ssh without a command is interactive")]
    inner = ctx.run_shell(text, "ssh")
    label = command_name(command[0]) if command else "a RemoteCommand"
    reason = f"ssh runs {display(label)} on another host"
    return [*findings, *inner, ctx.floor("ssh", reason, argv, inner)]


SPECS: list[CommandSpec] = [spec("ssh", judge_ssh, check_secrets=False)]
