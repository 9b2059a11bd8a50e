"""Building blocks of the knowledge base: findings, the judging context and command specs.

Every command family is described by one :class:`CommandSpec`. Simple families are pure data
(read/change subcommands, options that mean a change ...) judged by :func:`judge_generic`;
complex ones carry their own ``judge`` function. A judge returns :class:`Finding` objects; the
engine takes the most dangerous one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from tend.execution.policy.argv import UNKNOWN, command_name
from tend.execution.policy.model import Risk
from tend.execution.policy.paths import (
    may_hold_secrets,
    normalise,
    path_candidates,
    secret_kind,
)

READ, CHANGE, FORBIDDEN = Risk.READ, Risk.CHANGE, Risk.FORBIDDEN


def display(text: str) -> str:
    """Render text for a reason, showing run-time text as ``$…``."""
    return text.replace(UNKNOWN, "$…")


@dataclass(frozen=True, slots=True)
class Finding:
    """One judgement about a part of a command.

    Attributes:
        risk: The risk of this part.
        reason: One sentence explaining it.
        command: The innermost command this finding is about.
        wrappers: Wrappers unwrapped to reach it, outermost first.
        argv: The effective argv judged, which configured argv patterns are matched against;
            ``None`` for structural findings (shell constructs, run-time text) that rules cannot
            lower.
    """

    risk: Risk
    reason: str
    command: str
    wrappers: tuple[str, ...] = ()
    argv: tuple[str, ...] | None = None


Dispatch = Callable[[list[str], "Context"], list[Finding]]


@dataclass(frozen=True, slots=True)
class Context:
    """Where a command is judged: wrappers so far, nesting depth, working directory, shell mode.

    Attributes:
        dispatch: Judges an argv (the engine's entry point, used by wrappers to recurse).
        shell_judge: Judges a shell string (used by ``sh -c``, ``su -c``, ``ssh`` ...).
        wrappers: Wrappers unwrapped so far, outermost first.
        depth: How many wrappers or shells deep the command is.
        cwds: The working directories the command may run in (``None``: unknown).
        in_shell: Whether the words come from a shell string, so globs are live.
    """

    dispatch: Dispatch
    shell_judge: Callable[[str, Context], list[Finding]]
    wrappers: tuple[str, ...] = ()
    depth: int = 0
    cwds: tuple[str | None, ...] = (None,)
    in_shell: bool = False

    def enter(
        self, wrapper: str, *, in_shell: bool | None = None, cwd: str | None = None
    ) -> Context:
        """Return the context one wrapper deeper (optionally changing shell mode or directory)."""
        cwds = self.cwds
        if cwd is not None:
            cwds = tuple(dict.fromkeys(normalise(cwd, base) for base in self.cwds))
        return replace(
            self,
            wrappers=(*self.wrappers, wrapper),
            depth=self.depth + 1,
            cwds=cwds,
            in_shell=self.in_shell if in_shell is None else in_shell,
        )

    def run(self, argv: Sequence[str], wrapper: str, *, cwd: str | None = None) -> list[Finding]:
        """Judge the argv a wrapper runs."""
        if not argv:
            return []
        return self.dispatch(list(argv), self.enter(wrapper, cwd=cwd))

    def run_shell(self, text: str, wrapper: str) -> list[Finding]:
        """Judge a shell string a wrapper runs."""
        return self.shell_judge(text, self.enter(wrapper, in_shell=True))

    def verdict(
        self, risk: Risk, reason: str, argv: Sequence[str] | None, command: str | None = None
    ) -> Finding:
        """Make a finding about ``argv`` (or a structural one when ``argv`` is ``None``)."""
        if command is None:
            command = command_name(argv[0]) if argv else (self.wrappers or ("sh",))[-1]
        return Finding(
            risk, reason, display(command), self.wrappers, None if argv is None else tuple(argv)
        )

    def floor(
        self, wrapper: str, reason: str, argv: Sequence[str], inner: Sequence[Finding]
    ) -> Finding:
        """Make the ``change`` finding a wrapper adds on top of what it runs."""
        command = inner[0].command if inner else command_name(argv[0])
        return Finding(CHANGE, reason, command, (*self.wrappers, wrapper), tuple(argv))

    def paths(self, token: str) -> list[str]:
        """Normalised local paths an argument may name, for every possible working directory."""
        return [
            normalise(candidate, cwd)
            for candidate in path_candidates(token)
            for cwd in self.cwds
            if candidate
        ]

    def secret(self, args: Iterable[str], *, allow_devices: bool = False) -> str | None:
        """Describe the first argument naming a secret (``None`` when there is none)."""
        for arg in args:
            for path in self.paths(arg):
                kind = secret_kind(path, globbing=self.in_shell, allow_devices=allow_devices)
                if kind is not None:
                    return f"{display(arg)} ({kind})"
        return None

    def secret_tree(self, directory: str) -> bool:
        """Whether reading ``directory`` recursively may read secrets."""
        return any(may_hold_secrets(path, globbing=self.in_shell) for path in self.paths(directory))


Judge = Callable[[list[str], Context], list[Finding]]


def option_is(option: str, names: Iterable[str]) -> bool:
    """Whether ``option`` is one of ``names``, counting GNU abbreviations of long options.

    GNU ``getopt_long`` accepts any unambiguous prefix (``rm --rec`` is ``rm --recursive``);
    without each program's full option list, any prefix of a listed long option counts.

    Args:
        option: The option as given, without its ``=value``.
        names: Options to compare with.

    Returns:
        ``True`` when ``option`` is, or may abbreviate, one of ``names``.
    """
    abbreviation = option.startswith("--") and len(option) > 2
    return any(
        option == name or (abbreviation and name.startswith("--") and name.startswith(option))
        for name in names
    )


@dataclass(slots=True)
class ParsedArgs:
    """Options and operands of a command line."""

    options: list[tuple[str, str | None]] = field(default_factory=list)
    operands: list[str] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        """Whether any of the options ``names`` was given."""
        return any(option_is(option, names) for option, _ in self.options)

    def values(self, *names: str) -> list[str]:
        """Values given to the options ``names``."""
        return [
            value
            for option, value in self.options
            if option_is(option, names) and value is not None
        ]


def _takes_value(name: str, takes_value: frozenset[str]) -> bool:
    """Whether ``--name`` takes a value: listed, or an abbreviation of listed long options.

    ``sed --expr 'w /tmp/x'`` is ``sed --expression 'w /tmp/x'``: without this the value would
    be taken for an operand (a file), and the script would go unjudged.
    """
    if name in takes_value:
        return True
    return (
        name.startswith("--")
        and len(name) > 3
        and any(option.startswith(name) for option in takes_value if option.startswith("--"))
    )


def parse_args(
    args: Sequence[str],
    value_options: Iterable[str] = (),
    *,
    single_dash_long: bool = False,
    stop_at_operand: bool = False,
) -> ParsedArgs:
    """Split arguments into options and operands, GNU style.

    ``--name=value`` and ``--name value`` (for options in ``value_options``, or
    abbreviations of them) give a value,
    short options may be clustered (``-rf``) and a value may be glued (``-n5``). ``--`` ends the
    options.

    Args:
        args: The arguments after the program name.
        value_options: Options that take a value, e.g. ``{"-n", "--lines"}``.
        single_dash_long: Treat ``-name`` as one option (``find``, ``openssl``).
        stop_at_operand: Stop at the first operand; the rest are operands (wrappers).

    Returns:
        The parsed options and operands.
    """
    takes_value = frozenset(value_options)
    parsed = ParsedArgs()
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            parsed.operands.extend(args[index:])
            break
        if arg.startswith("--") or (single_dash_long and arg.startswith("-") and len(arg) > 1):
            name, eq, value = arg.partition("=")
            if eq:
                parsed.options.append((name, value))
            elif _takes_value(name, takes_value) and index < len(args):
                parsed.options.append((name, args[index]))
                index += 1
            else:
                parsed.options.append((name, None))
        elif arg.startswith("-") and len(arg) > 1:
            for pos, char in enumerate(arg[1:], start=2):
                option = "-" + char
                if option in takes_value:
                    glued: str | None = arg[pos:]
                    if not glued:
                        glued = args[index] if index < len(args) else None
                        index += 1
                    parsed.options.append((option, glued))
                    break
                parsed.options.append((option, None))
        else:
            parsed.operands.append(arg)
            if stop_at_operand:
                parsed.operands.extend(args[index:])
                break
    return parsed


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What the policy knows about one command family.

    Attributes:
        names: Command names of the family (basenames, see ``command_family``).
        what: What the family acts on, used in reasons ("changes service state").
        default: Verdict when nothing more specific applies.
        read_subcommands: First operands that only read.
        change_subcommands: First operands that change something.
        unknown_subcommand: Verdict for a first operand in neither set.
        no_subcommand: Verdict without operands (``None``: ``default``).
        change_options: Options that always mean a change (``--vacuum-size``).
        change_prefixes: Option prefixes that mean a change (``--vacuum-``, ``--data``).
        value_options: Options that take a separate value (so it is not seen as an operand).
        max_operands: More operands than this mean a change (``hostname NAME``).
        raw_devices_ok: Naming a raw disk or partition is fine (metadata tools like ``lsblk``).
        check_secrets: Whether arguments naming secrets raise the verdict to ``change``.
        reason: Reason sentence for the default verdict (``{name}`` is the command name).
        judge: A custom judge replacing :func:`judge_generic`.
    """

    names: tuple[str, ...]
    what: str = "system state"
    default: Risk = READ
    read_subcommands: frozenset[str] = frozenset()
    change_subcommands: frozenset[str] = frozenset()
    unknown_subcommand: Risk = CHANGE
    no_subcommand: Risk | None = None
    change_options: frozenset[str] = frozenset()
    change_prefixes: tuple[str, ...] = ()
    value_options: frozenset[str] = frozenset()
    max_operands: int | None = None
    raw_devices_ok: bool = False
    check_secrets: bool = True
    reason: str | None = None
    judge: Judge | None = None


def spec(names: str, judge: Judge | None = None, **fields: object) -> CommandSpec:
    """Build a :class:`CommandSpec` from space-separated names, sets given as strings.

    Args:
        names: Space-separated command names, e.g. ``"apt apt-get"``.
        judge: Optional custom judge.
        **fields: Other :class:`CommandSpec` fields; string values for set-valued fields are
            split on whitespace.

    Returns:
        The spec.
    """
    converted: dict[str, object] = {}
    for key, value in fields.items():
        if key.endswith(("_subcommands", "_options")) and isinstance(value, str):
            converted[key] = frozenset(value.split())
        elif key == "change_prefixes" and isinstance(value, str):
            converted[key] = tuple(value.split())
        else:
            converted[key] = value
    return CommandSpec(tuple(names.split()), judge=judge, **converted)  # type: ignore[arg-type]


def judge_generic(command: CommandSpec, argv: list[str], ctx: Context) -> list[Finding]:
    """Judge ``argv`` with the data of ``command`` alone.

    Args:
        command: The family's spec.
        argv: The argv, ``argv[0]`` being a name of the family.
        ctx: The judging context.

    Returns:
        One finding.
    """
    name = display(command_name(argv[0]))
    parsed = parse_args(argv[1:], command.value_options)
    for option, _ in parsed.options:
        if option_is(option, command.change_options) or any(
            option.startswith(prefix) or option_is(option, [prefix])
            for prefix in command.change_prefixes
        ):
            return [ctx.verdict(CHANGE, f"{name} {option} changes {command.what}", argv)]
    if command.read_subcommands or command.change_subcommands:
        if not parsed.operands:
            risk = command.no_subcommand or command.default
            verb = "only reads" if risk is READ else "changes"
            return [ctx.verdict(risk, f"{name} without a subcommand {verb} {command.what}", argv)]
        sub = display(parsed.operands[0])
        if parsed.operands[0] in command.change_subcommands:
            return [ctx.verdict(CHANGE, f"{name} {sub} changes {command.what}", argv)]
        if parsed.operands[0] in command.read_subcommands:
            return [ctx.verdict(READ, f"{name} {sub} only reads {command.what}", argv)]
        return [
            ctx.verdict(
                command.unknown_subcommand,
                f"{name} {sub} is not a known read-only subcommand",
                argv,
            )
        ]
    if command.max_operands is not None and len(parsed.operands) > command.max_operands:
        return [ctx.verdict(CHANGE, f"{name} with arguments changes {command.what}", argv)]
    if command.reason is not None:
        return [ctx.verdict(command.default, command.reason.format(name=name), argv)]
    if command.default is READ:
        return [ctx.verdict(READ, f"{name} only reads {command.what}", argv)]
    return [ctx.verdict(command.default, f"{name} changes {command.what}", argv)]


def read(ctx: Context, argv: Sequence[str], reason: str) -> list[Finding]:
    """One ``read`` finding."""
    return [ctx.verdict(READ, reason, argv)]


def change(ctx: Context, argv: Sequence[str], reason: str) -> list[Finding]:
    """One ``change`` finding."""
    return [ctx.verdict(CHANGE, reason, argv)]


def forbidden(ctx: Context, argv: Sequence[str], reason: str) -> list[Finding]:
    """One ``forbidden`` finding."""
    return [ctx.verdict(FORBIDDEN, reason, argv)]
