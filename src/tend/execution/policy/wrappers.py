"""Wrappers: commands that run another command, judged by what they run.

Each judge parses the wrapper's own options, then hands the wrapped argv back to the engine
through :meth:`Context.run`, so unwrapping is recursive. Wrappers that make the effect harder to
foresee (``xargs``, ``ssh``, ``chroot`` ...) add a ``change`` finding of their own.
"""

from __future__ import annotations

import re
import shlex

from tend.execution.policy.argv import command_name, words
from tend.execution.policy.knowledge import (
    CommandSpec,
    Context,
    Finding,
    change,
    parse_args,
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


def assignments(argv: list[str], start: int, ctx: Context) -> tuple[int, list[Finding]]:
    """Skip ``NAME=VALUE`` words from ``start``; return the next index and findings."""
    findings: list[Finding] = []
    index = start
    while index < len(argv) and (match := _ASSIGNMENT_RE.fullmatch(argv[index])):
        reason = unsafe_assignment(match.group(1), match.group(2))
        if reason is not None:
            findings += change(ctx, argv, f"{command_name(argv[0])}: {reason}")
        index += 1
    return index, findings


def wrapper_options(
    argv: list[str], values: str, flags: str
) -> tuple[dict[str, str | None], int, str | None]:
    """Parse a wrapper's options strictly, stopping at its command.

    Args:
        argv: The wrapper's argv.
        values: Space-separated options that take a value.
        flags: Space-separated options without a value.

    Returns:
        The options seen (with values), the index of the command and the first option not
        understood (``None`` when all were).
    """
    takes_value, plain = words(values), words(flags)
    seen: dict[str, str | None] = {}
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return seen, index + 1, None
        if not arg.startswith("-") or arg == "-":
            break
        index += 1
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in takes_value and not eq:
                value = argv[index] if index < len(argv) else ""
                index += 1
            elif name not in takes_value and name not in plain:
                return seen, index, arg
            seen[name] = value if (eq or name in takes_value) else None
            continue
        for pos, char in enumerate(arg[1:], start=2):
            option = "-" + char
            if option in takes_value:
                value = arg[pos:]
                if not value:
                    value = argv[index] if index < len(argv) else ""
                    index += 1
                seen[option] = value
                break
            if option not in plain:
                return seen, index, arg
            seen[option] = None
    return seen, index, None


_SUDO_VALUES = (
    "-u -g -h -p -C -D -r -t -T -U --user --group --host --prompt --close-from --chdir --role "
    "--type --command-timeout --other-user"
)
_SUDO_FLAGS = (
    "-A -b -E -H -K -k -L -l -n -P -S -V -v -i -s -e --askpass --background --preserve-env "
    "--set-home --reset-timestamp --remove-timestamp --list --non-interactive --preserve-groups "
    "--stdin --version --validate --login --shell --edit --help --bell"
)


def judge_sudo(argv: list[str], ctx: Context) -> list[Finding]:
    """``sudo``/``doas``/``pkexec``: judged by the command they run as another user.

    ``-e``/``sudoedit`` edit files (change); ``-s``/``-i`` without a command start an
    interactive shell (change); ``-l``, ``-v``, ``-k`` and ``-V`` only read.
    """
    name = command_name(argv[0])
    if name == "sudoedit":
        return change(ctx, argv, "sudoedit edits files as another user")
    values, flags = _SUDO_VALUES, _SUDO_FLAGS
    if name == "doas":
        values, flags = "-u -C", "-n -s -L"
    elif name == "pkexec":
        values, flags = "--user", "--disable-internal-agent --keep-cwd"
    seen, index, unknown = wrapper_options(argv, values, flags)
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
    return ctx.run(command, name, cwd=chdir) + findings


def judge_env(argv: list[str], ctx: Context) -> list[Finding]:
    """``env``: skips ``-i``, ``-u NAME``, ``-C DIR`` and assignments; parses ``-S STRING``.

    Without a command ``env`` prints the environment, which may hold secrets (change).
    """
    values = "-u --unset -C --chdir -S --split-string -P"
    flags = (
        "-i --ignore-environment -0 --null -v --debug --help --version --default-signal "
        "--ignore-signal --block-signal --list-signal-handling"
    )
    args = ["env", "-i", *argv[2:]] if argv[1:2] == ["-"] else argv
    seen, index, unknown = wrapper_options(args, values, flags)
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
    name: str, values: str, flags: str, operands: int = 0, *, empty: str = "", lookups: str = ""
) -> CommandSpec:
    """A wrapper with fixed options, ``operands`` positional arguments, then the command.

    Options in ``lookups`` (``command -v``) make it a read-only lookup.
    """

    def judge(argv: list[str], ctx: Context) -> list[Finding]:
        wrapper = command_name(argv[0])
        seen, index, unknown = wrapper_options(argv, values, f"{flags} {lookups}")
        if unknown is not None:
            return change(ctx, argv, f"{wrapper} option {unknown} is not understood")
        if seen.keys() & ({"--help", "--version"} | words(lookups)):
            return read(ctx, argv, f"{wrapper} {' '.join(seen)} only prints information")
        if index + operands >= len(argv):
            return read(ctx, argv, empty or f"{wrapper} without a command runs nothing")
        return ctx.run(argv[index + operands :], wrapper)

    return spec(name, judge, check_secrets=False)


def judge_nice(argv: list[str], ctx: Context) -> list[Finding]:
    """``nice [-n N | -N] COMMAND``: judged by the command."""
    index = 1
    if index < len(argv) and argv[index] in {"-n", "--adjustment"}:
        index += 2
    elif index < len(argv) and re.fullmatch(r"-n-?\d+|--adjustment=-?\d+|--?\d+", argv[index]):
        index += 1
    if index < len(argv) and argv[index] == "--":
        index += 1
    if index >= len(argv):
        return read(ctx, argv, "nice without a command only prints the niceness")
    return ctx.run(argv[index:], "nice")


def judge_ionice(argv: list[str], ctx: Context) -> list[Finding]:
    """``ionice``: changing another process (``-p``) is a change; else judged by the command."""
    values = "-c --class -n --classdata -p --pid -P --pgid -u --uid"
    seen, index, unknown = wrapper_options(argv, values, "-t --ignore -h --help")
    if unknown is not None:
        return change(ctx, argv, f"ionice option {unknown} is not understood")
    if seen.keys() & {"-p", "--pid", "-P", "--pgid", "-u", "--uid"}:
        if seen.keys() & {"-c", "--class", "-n", "--classdata"}:
            return change(ctx, argv, "ionice -p changes the I/O priority of running processes")
        return read(ctx, argv, "ionice -p only shows I/O priorities")
    if index >= len(argv):
        return read(ctx, argv, "ionice without a command only shows the I/O priority")
    return ctx.run(argv[index:], "ionice")


def judge_pid_or_command(argv: list[str], ctx: Context) -> list[Finding]:
    """``chrt``/``taskset``: ``-p`` with a value changes a process; else judged by the command."""
    name = command_name(argv[0])
    values = words("-T --sched-runtime -P --sched-period -D --sched-deadline")
    parsed = parse_args(argv[1:], values, stop_at_operand=True)
    if parsed.has("-p", "--pid"):
        if len(parsed.operands) >= 2:
            return change(ctx, argv, f"{name} -p changes the scheduling of a running process")
        return read(ctx, argv, f"{name} -p only shows the scheduling of a process")
    if parsed.has("-m", "--max") or len(parsed.operands) < 2:
        return read(ctx, argv, f"{name} without a command only shows scheduling information")
    return ctx.run(parsed.operands[1:], name)


def judge_xargs(argv: list[str], ctx: Context) -> list[Finding]:
    """``xargs CMD``: judged by ``CMD``, and at least change (its arguments come from input)."""
    values = words(
        "-a --arg-file -d --delimiter -E -I -L -n --max-args -P --max-procs -s --max-chars "
        "--process-slot-var"
    )
    parsed = parse_args(argv[1:], values, stop_at_operand=True)
    command = parsed.operands or ["echo"]
    inner = ctx.run(command, "xargs")
    reason = (
        f"xargs runs {command_name(command[0])} with arguments read from its input, "
        "which cannot be judged in advance"
    )
    findings = [*inner, ctx.floor("xargs", reason, argv, inner)]
    secret = ctx.secret(parsed.values("-a", "--arg-file"))
    if secret is not None:
        findings += change(ctx, argv, f"xargs reads {secret}")
    return findings


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
        "--preserve-status --foreground -v --verbose --help --version",
        1,
    ),
    spec("nice", judge_nice, check_secrets=False),
    spec("ionice", judge_ionice, check_secrets=False),
    _simple("stdbuf", "-i --input -o --output -e --error", "--help"),
    spec("chrt taskset", judge_pid_or_command, check_secrets=False),
    _simple("setsid", "", "-c --ctty -f --fork -w --wait --help"),
    _simple("time", "-f --format", "-p --portability -v --verbose -q --quiet --help"),
    _simple("command", "", "-p", lookups="-v -V"),
    _simple("builtin", "", ""),
    _simple("exec", "-a", "-c -l", empty="exec without a command only sets redirections"),
    _simple("systemd-inhibit", "--what --who --why --mode", "--list"),
    spec("xargs", judge_xargs, check_secrets=False),
    spec("busybox", judge_busybox, check_secrets=False),
]
