"""Wrappers that run a command elsewhere or through a shell: ``watch``, ``su``, ``ssh`` ...

Remote and isolating wrappers (``ssh``, ``chroot``, ``nsenter`` ...) are at least ``change``:
paths and effects inside them are not those of the host being judged.
"""

from __future__ import annotations

from tend.execution.policy.argv import command_name, words
from tend.execution.policy.getopt import getopt_long, option_table
from tend.execution.policy.knowledge import (
    CommandSpec,
    Context,
    Finding,
    change,
    parse_args,
    read,
    spec,
)
from tend.execution.policy.wrappers import wrapper_options


def judge_watch(argv: list[str], ctx: Context) -> list[Finding]:
    """``watch CMD``: the command runs through ``sh -c`` unless ``-x`` is given."""
    values = "-n --interval -q --equexit"
    flags = (
        "-b -c -C -e -g -t -x -p -w -r -h -v --beep --color --no-color --errexit --chgexit "
        "--no-title --exec --precise --no-wrap --no-rerun --help --version"
    )
    seen, index, unknown = wrapper_options(argv, values, flags, "-d --differences")
    if unknown is not None:
        return change(ctx, argv, f"watch option {unknown} is not understood")
    command = argv[index:]
    if not command or seen.keys() & {"-h", "--help", "-v", "--version"}:
        return read(ctx, argv, "watch without a command runs nothing")
    if seen.keys() & {"-x", "--exec"}:
        return ctx.run(command, "watch")
    return ctx.run_shell(" ".join(command), "watch")


_FLOCK = option_table(
    "-w -E -c --timeout --wait --conflict-exit-code --command",
    "-s -e -x -u -n -o -F -h -V --shared --exclusive --unlock --nonblocking --nb --close "
    "--no-fork --verbose --help --version",
)


def judge_flock(argv: list[str], ctx: Context) -> list[Finding]:
    """``flock FILE CMD`` or ``flock FILE -c STRING``: judged by what runs under the lock."""
    parsed = getopt_long(argv, _FLOCK)
    if parsed.unknown is not None:
        return change(ctx, argv, f"flock option {parsed.unknown} is not understood")
    command = parsed.values("-c", "--command")
    if command:
        return ctx.run_shell(command[0], "flock")
    rest = parsed.operands[1:]
    if rest and rest[0] in {"-c", "--command"}:
        return ctx.run_shell(" ".join(rest[1:]), "flock")
    if rest:
        return ctx.run(rest, "flock")
    return read(ctx, argv, "flock on a file descriptor only takes a lock")


_SU = option_table(
    "-c -g -G -s -u -w --command --session-command --group --supp-group --shell --user "
    "--whitelist-environment",
    "-f -l -m -p -P -h -V --fast --login --preserve-environment --pty --help --version",
)


def judge_su(argv: list[str], ctx: Context) -> list[Finding]:
    """``su``/``runuser``: ``-c STRING`` is parsed as shell, ``runuser -u USER CMD`` as argv.

    ``su`` mixes options and operands (``su root -c CMD``); ``runuser -u USER`` stops at the
    command. Arguments after the user are passed to the shell (``su root -- -c CMD``).
    """
    name = command_name(argv[0])
    args = [arg if arg != "-" else "-l" for arg in argv]
    stop = name == "runuser" and any(arg == "--user" or arg.startswith("-u") for arg in args)
    parsed = getopt_long(args, _SU, permute=not stop)
    if parsed.unknown is not None:
        return change(ctx, argv, f"{name} option {parsed.unknown} is not understood")
    shells = [command_name(shell) for shell in parsed.values("-s", "--shell")]
    if shells and shells[-1] not in {"sh", "bash", "dash", "ash", "zsh", "ksh"}:
        return change(ctx, argv, f"{name} -s {shells[-1]} runs an unusual shell")
    commands = parsed.values("-c", "--command", "--session-command")
    if name == "runuser" and parsed.has("-u", "--user") and parsed.operands:
        return ctx.run(parsed.operands, name)
    findings = ctx.run_shell(commands[-1], name) if commands else []
    if len(parsed.operands) > 1:
        shell = shells[-1] if shells else "sh"
        findings += ctx.run([shell, *parsed.operands[1:]], name)
    if findings:
        return findings
    return change(ctx, argv, f"{name} without a command starts an interactive shell")


def _floored(wrapper: str, reason: str, values: str, skip: int, *, empty: str = "") -> CommandSpec:
    """A wrapper whose command is judged and that is itself at least ``change``."""

    def judge(argv: list[str], ctx: Context) -> list[Finding]:
        parsed = parse_args(argv[1:], words(values), stop_at_operand=True)
        command = parsed.operands[skip:]
        # ``strace -o '|CMD'`` (or ``!CMD``) pipes the trace into a shell command.
        piped = [
            ctx.run_shell(value[1:], wrapper)
            for value in parsed.values("-o", "--output")
            if wrapper == "strace" and value[:1] in {"|", "!"}
        ]
        extra = [finding for findings in piped for finding in findings]
        if not command:
            text = empty or f"{wrapper} without a command is interactive"
            return change(ctx, argv, text) + extra
        inner = ctx.run(command, wrapper) + extra
        text = reason.format(cmd=command_name(command[0]))
        return [*inner, ctx.floor(wrapper, text, argv, inner)]

    return spec(wrapper, judge, check_secrets=False)


SPECS: list[CommandSpec] = [
    spec("watch", judge_watch, check_secrets=False),
    spec("flock", judge_flock, check_secrets=False),
    spec("su runuser", judge_su, check_secrets=False),
    _floored(
        "chroot", "chroot runs {cmd} inside another root filesystem", "--userspec --groups", 1
    ),
    _floored(
        "nsenter",
        "nsenter runs {cmd} inside other namespaces",
        "-t --target -S --setuid -G --setgid -r -w",
        0,
    ),
    _floored("unshare", "unshare runs {cmd} in new namespaces", "--propagation", 0),
    _floored(
        "systemd-run",
        "systemd-run runs {cmd} as a transient service",
        "-u --unit -p --property --description --slice -E --setenv --uid --gid --nice "
        "--working-directory -H --host -M --machine --on-active --on-boot --on-startup "
        "--on-unit-active --on-unit-inactive --on-calendar --timer-property --path-property "
        "--socket-property --service-type",
        0,
        empty="systemd-run without a command is malformed",
    ),
    _floored(
        "strace",
        "strace runs {cmd} and can read its memory",
        "-e -o -p -s -u -E -P -I -b -a -O -S -X --output",
        0,
        empty="strace -p attaches to a running process and can read its memory",
    ),
    _floored(
        "ltrace",
        "ltrace runs {cmd} and can read its memory",
        "-e -o -p -s -u -n -a -A -D -F -l -w -x",
        0,
        empty="ltrace -p attaches to a running process and can read its memory",
    ),
]
