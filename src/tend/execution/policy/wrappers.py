"""Wrappers: commands that run another command, judged by what they run.

Each judge parses the wrapper's own options, then hands the wrapped argv back to the engine
through :meth:`Context.run`, so unwrapping is recursive. Wrappers that make the effect harder to
foresee (``xargs``, ``ssh``, ``chroot`` ...) add a ``change`` finding of their own.
"""

from __future__ import annotations

import re
import shlex

from tend.execution.policy.argv import command_name, words
from tend.execution.policy.getopt import getopt_long, option_table
from tend.execution.policy.knowledge import (
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    read,
    spec,
)

_ASSIGNMENT_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
_SAFE_VARIABLES = re.compile(
    r"LANG|LANGUAGE|LC_[A-Z_]+|TZ|TERM|COLUMNS|LINES|NO_COLOR|CLICOLOR(?:_FORCE)?|"
    r"SYSTEMD_COLORS|SYSTEMD_URLIFY|TIME_STYLE|BLOCK_SIZE|BLOCKSIZE|DF_BLOCK_SIZE|DU_BLOCK_SIZE|"
    r"LS_COLORS|GREP_COLORS?|DEBIAN_FRONTEND|NEEDRESTART_MODE"
)
_PAGERS = re.compile(r"PAGER|SYSTEMD_PAGER|GIT_PAGER|MANPAGER")


def unsafe_assignment(name: str, value: str) -> str | None:
    """Say why setting an environment variable is unsafe (``None`` when it is harmless).

    Only locale, terminal, colour and size variables are harmless, plus pagers set to ``cat``
    or nothing; any other variable (``PATH``, ``LD_PRELOAD``, ``PYTHONPATH``, ``PAGER`` ...) can
    change which code runs.

    Args:
        name: Variable name.
        value: Value assigned.

    Returns:
        A reason, or ``None``.
    """
    if _SAFE_VARIABLES.fullmatch(name):
        return None
    if _PAGERS.fullmatch(name) and value in {"", "cat"}:
        return None
    return f"setting {name} can change which code runs"


_SHELL_VARIABLES = re.compile(
    r"PAGER|SYSTEMD_PAGER|GIT_PAGER|MANPAGER|GIT_SSH_COMMAND|GIT_EXTERNAL_DIFF|GIT_EDITOR|"
    r"GIT_SEQUENCE_EDITOR|EDITOR|VISUAL|SYSTEMD_EDITOR|KUBE_EDITOR|BROWSER|LESSOPEN|LESSCLOSE|"
    r"KUBECTL_EXTERNAL_DIFF|GIT_PROXY_COMMAND|RSYNC_RSH|GIT_ASKPASS|SSH_ASKPASS|SUDO_ASKPASS|"
    r"GIT_SSH|SHELL"
)


def assignment_findings(name: str, value: str, ctx: Context, argv: list[str]) -> list[Finding]:
    """Judge ``NAME=VALUE`` given to a command: unsafe variables are at least a change.

    Variables that name a program or a shell command run later (``PAGER``, ``GIT_PAGER``,
    ``GIT_SSH_COMMAND``, ``GIT_EXTERNAL_DIFF``, ``EDITOR`` ...) also have their value judged
    as a shell command, so ``env GIT_PAGER='rm -rf /' git log`` is forbidden.

    Args:
        name: Variable name.
        value: Value assigned.
        ctx: The judging context.
        argv: The argv the assignment belongs to (for the finding).

    Returns:
        The findings (none when the assignment is harmless).
    """
    reason = unsafe_assignment(name, value)
    if reason is None:
        return []
    findings = change(ctx, argv, f"{command_name(argv[0])}: {reason}")
    if _SHELL_VARIABLES.fullmatch(name) and value.strip("|- "):
        findings += ctx.run_shell(value.strip("|- "), name)
    return findings


def assignments(argv: list[str], start: int, ctx: Context) -> tuple[int, list[Finding]]:
    """Skip ``NAME=VALUE`` words from ``start``; return the next index and findings."""
    findings: list[Finding] = []
    index = start
    while index < len(argv) and (match := _ASSIGNMENT_RE.fullmatch(argv[index])):
        findings += assignment_findings(match.group(1), match.group(2), ctx, argv)
        index += 1
    return index, findings


def wrapper_options(
    argv: list[str], values: str, flags: str, optional: str = ""
) -> tuple[dict[str, str | None], int, str | None]:
    """Parse a wrapper's options as GNU ``getopt_long`` with ``+`` does, stopping at its command.

    Long options may be abbreviated (``--sig`` is ``--signal``); an ambiguous or unknown option
    is reported, as the real wrapper then exits without running anything.

    Args:
        argv: The wrapper's argv.
        values: Space-separated options that take a value.
        flags: Space-separated options without a value.
        optional: Space-separated options with an optional, glued value.

    Returns:
        The options seen (by full name, with values), the index of the command and the first
        option not understood (``None`` when all were).
    """
    result = getopt_long(argv, option_table(values, flags, optional))
    return result.seen, result.index, result.unknown


_SUDO_VALUES = (
    "-a -C -c -D -g -p -R -r -t -T -U -u --auth-type --close-from --login-class --chdir --group "
    "--host --prompt --chroot --role --type --command-timeout --other-user --user"
)
_SUDO_FLAGS = (
    "-A -B -b -E -e -H -i -K -k -L -l -N -n -P -S -s -V -v --askpass --bell --background --edit "
    "--set-home --help --login --remove-timestamp --reset-timestamp --list --non-interactive "
    "--no-update --preserve-groups --stdin --shell --version --validate"
)


def judge_sudo(argv: list[str], ctx: Context) -> list[Finding]:
    """``sudo``/``doas``/``pkexec``: judged by the command they run as another user.

    ``-e``/``sudoedit`` edit files (change); ``-s``/``-i`` without a command start an
    interactive shell (change); ``-l``, ``-v``, ``-k`` and ``-V`` only read. ``-R DIR`` runs the
    command inside another root (at least change).
    """
    name = command_name(argv[0])
    if name == "sudoedit":
        return change(ctx, argv, "sudoedit edits files as another user")
    values, flags, optional = _SUDO_VALUES, _SUDO_FLAGS, "-h --preserve-env"
    if name == "doas":
        values, flags, optional = "-a -u -C", "-n -s -L", ""
    elif name == "pkexec":
        values, flags, optional = "-u --user", "--disable-internal-agent --keep-cwd", ""
    seen, index, unknown = wrapper_options(argv, values, flags, optional)
    if unknown is not None:
        return change(ctx, argv, f"{name} option {unknown} is not understood")
    if seen.keys() & {"-e", "--edit"}:
        return change(ctx, argv, f"{name} -e edits files as another user")
    if seen.keys() & {"-l", "--list"} or (name == "doas" and "-C" in seen):
        return read(ctx, argv, f"{name} -l only lists what may be run")
    index, findings = assignments(argv, index, ctx)
    command = argv[index:]
    if not command:
        if seen.keys() & {"-s", "-i", "--shell", "--login"} or name == "pkexec":
            return change(ctx, argv, f"{name} without a command starts an interactive shell")
        return read(ctx, argv, f"{name} without a command runs nothing")
    chdir = seen.get("-D") or seen.get("--chdir") or None
    inner = ctx.run(command, name, cwd=chdir) + findings
    if seen.keys() & {"-R", "--chroot"}:
        reason = f"{name} --chroot runs {display(command_name(command[0]))} in another root"
        inner.append(ctx.floor(name, reason, argv, inner))
    return inner


_ENV_VALUES = "-a -C -S -u -P --argv0 --chdir --split-string --unset"
_ENV_FLAGS = "-i -0 -v --ignore-environment --null --debug --help --version --list-signal-handling"
_ENV_OPTIONAL = "--default-signal --ignore-signal --block-signal"


def judge_env(argv: list[str], ctx: Context) -> list[Finding]:
    """``env``: skips ``-i``, ``-u NAME``, ``-C DIR`` and assignments; parses ``-S STRING``.

    Without a command ``env`` prints the environment, which may hold secrets (change).
    """
    args = ["env", "-i", *argv[2:]] if argv[1:2] == ["-"] else argv
    seen, index, unknown = wrapper_options(args, _ENV_VALUES, _ENV_FLAGS, _ENV_OPTIONAL)
    if unknown is not None:
        return change(ctx, argv, f"env option {unknown} is not understood")
    if seen.keys() & {"--help", "--version"}:
        return read(ctx, argv, "env --help/--version only prints information")
    index, findings = assignments(args, index, ctx)
    command = args[index:]
    split = seen.get("-S") or seen.get("--split-string")
    if split is not None:
        try:
            command = shlex.split(split) + command
        except ValueError:
            return change(ctx, argv, "env -S string cannot be parsed")
        if "$" in split:
            findings += change(ctx, argv, "env -S expands variables that cannot be judged")
    if seen.keys() & {"-P"}:
        findings += change(ctx, argv, "env -P searches another PATH for the command")
    if not command:
        reason = "env without a command prints the environment, which may hold secrets"
        return change(ctx, argv, reason) + findings
    chdir = seen.get("-C") or seen.get("--chdir") or None
    return ctx.run(command, "env", cwd=chdir) + findings


def _simple(
    name: str,
    values: str,
    flags: str,
    operands: int = 0,
    *,
    optional: str = "",
    empty: str = "",
    lookups: str = "",
) -> CommandSpec:
    """A wrapper with fixed options, ``operands`` positional arguments, then the command.

    Options in ``lookups`` (``command -v``) make it a read-only lookup.
    """

    def judge(argv: list[str], ctx: Context) -> list[Finding]:
        wrapper = command_name(argv[0])
        seen, index, unknown = wrapper_options(argv, values, f"{flags} {lookups}", optional)
        if unknown is not None:
            return change(ctx, argv, f"{wrapper} option {unknown} is not understood")
        if seen.keys() & ({"--help", "--version"} | words(lookups)):
            return read(ctx, argv, f"{wrapper} {' '.join(seen)} only prints information")
        if index + operands >= len(argv):
            return read(ctx, argv, empty or f"{wrapper} without a command runs nothing")
        return ctx.run(argv[index + operands :], wrapper)

    return spec(name, judge, check_secrets=False)


def judge_busybox(argv: list[str], ctx: Context) -> list[Finding]:
    """``busybox APPLET ...`` is judged as ``APPLET ...``."""
    if len(argv) < 2 or argv[1] in {"--list", "--list-full", "--help"}:
        return read(ctx, argv, "busybox without an applet only lists applets")
    if argv[1].startswith("--install"):
        return change(ctx, argv, "busybox --install creates links to its applets")
    return ctx.run(argv[1:], "busybox")


SPECS: list[CommandSpec] = [
    spec("sudo doas pkexec sudoedit", judge_sudo, check_secrets=False),
    spec("env", judge_env, check_secrets=False),
    _simple("nohup", "", "--help --version"),
    _simple(
        "timeout",
        "-s --signal -k --kill-after",
        "-f -p --preserve-status --foreground -v --verbose --help --version",
        1,
    ),
    _simple("stdbuf", "-i --input -o --output -e --error", "--help --version"),
    _simple("setsid", "", "-c --ctty -f --fork -w --wait -h --help -V --version"),
    _simple("command", "", "-p", lookups="-v -V"),
    _simple("builtin", "", ""),
    _simple("exec", "-a", "-c -l", empty="exec without a command only sets redirections"),
    _simple(
        "systemd-inhibit",
        "--what --who --why --mode",
        "--list --no-pager --no-legend -h --help --version",
    ),
    spec("busybox", judge_busybox, check_secrets=False),
]
