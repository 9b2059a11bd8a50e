"""Knowledge about ``git``: inspection is read, but options that run programs are not.

Several read-only subcommands take options that run a program through the shell:
``git grep -O/--open-files-in-pager=CMD``, ``git ls-remote --upload-pack=CMD`` (``-u``),
``--receive-pack``/``--exec`` (push, archive, fetch-pack), ``rebase -x``, ``--ext-diff`` and
``--textconv``; the global ``-c key=value``/``--config-env`` can set ``core.pager``,
``core.sshCommand``, ``diff.external`` or ``alias.x=!cmd``. Those are at least change, and the
command they run is judged as shell code, so ``git grep -O'rm -rf /' x`` is forbidden. git
accepts unambiguous abbreviations of its long options (``--upl=CMD``).
"""

from __future__ import annotations

import re

from tend.execution.policy.argv import words
from tend.execution.policy.knowledge import (
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    parse_args,
    read,
    spec,
)

_GIT_READ = words(
    "status log show diff blame ls-files ls-tree ls-remote rev-parse rev-list describe shortlog "
    "cat-file grep version help show-ref show-branch whatchanged count-objects check-ignore "
    "check-attr name-rev merge-base var for-each-ref verify-commit verify-tag annotate"
)
_GIT_LISTING = {
    "branch": words(
        "-a --all -r --remotes -l --list -v -vv --verbose --merged --no-merged "
        "--contains --no-contains --show-current --sort --format --color "
        "--no-color --points-at -q --column --no-column"
    ),
    "tag": words(
        "-l --list -n --sort --format --contains --no-contains --merged --no-merged "
        "--points-at --column --color"
    ),
    "remote": words("-v --verbose"),
    "config": words(
        "--get --get-all --get-regexp --list -l --show-origin --show-scope "
        "--name-only --global --system --local --worktree -z --null --type "
        "--includes --default"
    ),
}
_GIT_NESTED_READ = {
    "stash": words("list show"),
    "remote": words("show get-url"),
    "worktree": words("list"),
    "submodule": words("status summary"),
    "notes": words("list show"),
    "reflog": words("show"),
}
_GIT_BARE_READ = frozenset({"submodule", "notes", "reflog"})

# Configuration keys whose value is a command git runs (``alias.*`` and ``credential.helper``
# only when they start with ``!``). Matched case-insensitively on ``section[.sub].key``.
_COMMAND_KEYS = re.compile(
    r"core\.(?:pager|sshcommand|editor|askpass|fsmonitor|gitproxy)|pager\..+|"
    r"diff\.(?:external|.+\.(?:textconv|command))|merge\..+\.driver|filter\..+\.(?:clean|smudge"
    r"|process)|sequence\.editor|gpg(?:\..+)?\.program|uploadpack\.packobjectshook|"
    r"web\.browser|browser\..+\.cmd|man\..+\.cmd|remote\..+\.(?:uploadpack|receivepack)|"
    r"(?:diff|merge)tool\..+\.cmd|credential(?:\..+)?\.helper|alias\..+|core\.hookspath",
    re.IGNORECASE,
)
# Long options that run their value as a command, for every subcommand.
_RUNS_VALUE = ("--upload-pack", "--receive-pack", "--exec", "--extcmd")
# Long options that run a program or write a file without naming it.
_RUNS_PROGRAM = ("--ext-diff", "--textconv", "--output")
_WRITES_OR_RUNS = "git --output/--ext-diff writes files or runs programs"
# Short options taking a value, per subcommand, for scanning clusters (``git grep -iO CMD``).
_SHORT_VALUES = {"grep": "efABCm", "ls-remote": "u", "clone": "uocb", "rebase": "xsXC"}
_SHORT_RUNS = {"grep": "O", "ls-remote": "u", "clone": "u", "rebase": "x", "difftool": "x"}


def _abbreviates(given: str, full: str) -> bool:
    """Whether a long option as given is ``full`` or an abbreviation of it (``--upl``)."""
    return given == full or (len(given) >= 4 and full.startswith(given))


def _config_findings(entries: list[str], ctx: Context, argv: list[str]) -> list[Finding]:
    findings = change(ctx, argv, "git -c can configure commands for git to run")
    for entry in entries:
        key, eq, value = entry.partition("=")
        if eq and _COMMAND_KEYS.fullmatch(key) and value.strip("! "):
            findings += ctx.run_shell(value.lstrip("! "), "git")
    return findings


def _option_findings(sub: str, rest: list[str], ctx: Context, argv: list[str]) -> list[Finding]:
    """Findings for subcommand options that run programs (``-O``, ``--upload-pack`` ...)."""
    findings: list[Finding] = []
    runs_short, values_short = _SHORT_RUNS.get(sub, ""), _SHORT_VALUES.get(sub, "")
    index = 0
    while index < len(rest):
        arg = rest[index]
        index += 1
        if arg == "--":
            break
        if arg.startswith("--"):
            given, eq, value = arg.partition("=")
            if sub == "grep" and _abbreviates(given, "--open-files-in-pager"):
                findings += change(ctx, argv, "git grep -O runs a pager program on the files")
                if eq and value:
                    findings += ctx.run_shell(value, "git")
            elif any(_abbreviates(given, name) for name in _RUNS_VALUE):
                if not eq and index < len(rest):
                    value, index = rest[index], index + 1
                findings += change(ctx, argv, f"git {given} runs a program")
                if value:
                    findings += ctx.run_shell(value, "git")
            elif any(_abbreviates(given, name) for name in _RUNS_PROGRAM):
                findings += change(
                    ctx, argv, "git --output/--ext-diff writes files or runs programs"
                )
            elif sub == "clone" and _abbreviates(given, "--config") and (eq or index < len(rest)):
                entry = value if eq else rest[index]
                findings += _config_findings([entry], ctx, argv)
            continue
        if not arg.startswith("-") or arg == "-":
            continue
        for pos, letter in enumerate(arg[1:], start=2):
            if sub == "clone" and letter == "c":
                entry = arg[pos:]
                if not entry and index < len(rest):
                    entry, index = rest[index], index + 1
                findings += _config_findings([entry], ctx, argv)
                break
            if letter in runs_short:
                value = arg[pos:]
                if not value and sub != "grep" and index < len(rest):
                    value, index = rest[index], index + 1
                what = "a pager program on the files" if sub == "grep" else "a program"
                findings += change(ctx, argv, f"git {sub} -{letter} runs {what}")
                if value:
                    findings += ctx.run_shell(value, "git")
                break
            if letter in values_short:
                break
    return findings


def judge_git(argv: list[str], ctx: Context) -> list[Finding]:
    """``git``: inspection subcommands are read; anything that writes a repository changes.

    Options that run programs are judged first (see the module docstring).
    """
    parsed = parse_args(
        argv[1:],
        {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"},
        stop_at_operand=True,
    )
    findings: list[Finding] = []
    if parsed.has("-c", "--config-env", "--exec-path"):
        findings += _config_findings(parsed.values("-c"), ctx, argv)
    if any(option.startswith(_RUNS_PROGRAM) for option, _ in parsed.options):
        findings += change(ctx, argv, _WRITES_OR_RUNS)
    if not parsed.operands:
        return findings or read(ctx, argv, "git without a subcommand only prints help")
    sub, rest = parsed.operands[0], parsed.operands[1:]
    findings += _option_findings(sub, rest, ctx, argv)
    helps = sub == "help" and any(not arg.startswith("-") for arg in rest)
    if helps or "--help" in rest[: rest.index("--") if "--" in rest else len(rest)]:
        findings += change(ctx, argv, "git help runs man, info or a web browser")
    if sub in {"grep", "diff"} and "--no-index" in rest:
        paths = [arg for arg in rest if not arg.startswith("-")] or ["."]
        if any(ctx.secret_tree(path) for path in paths):
            findings += change(ctx, argv, f"git {sub} --no-index may read secrets outside git")
    if findings:
        return findings
    return _judge_subcommand(sub, rest, ctx, argv)


def _judge_subcommand(sub: str, rest: list[str], ctx: Context, argv: list[str]) -> list[Finding]:
    if sub in _GIT_READ:
        return read(ctx, argv, f"git {sub} only reads the repository")
    sub_parsed = parse_args(rest, {"--sort", "--format", "--contains", "--points-at", "--type"})
    first = sub_parsed.operands[0] if sub_parsed.operands else None
    if first in _GIT_NESTED_READ.get(sub, ()) or (first is None and sub in _GIT_BARE_READ):
        return read(ctx, argv, f"git {sub} only reads the repository")
    listing = _GIT_LISTING.get(sub)
    if listing is not None and all(option in listing for option, _ in sub_parsed.options):
        if sub == "config":
            ok = sub_parsed.has("--get", "--get-all", "--get-regexp", "--list", "-l")
        else:
            ok = first is None or sub_parsed.has("-l", "--list")
        if ok:
            return read(ctx, argv, f"git {sub} only lists")
    return change(ctx, argv, f"git {display(sub)} changes a repository or talks to a remote")


SPECS: list[CommandSpec] = [spec("git", judge_git)]
