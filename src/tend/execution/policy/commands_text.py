"""Knowledge about commands that read and filter files: ``cat``, ``grep``, ``sed`` and friends.

Reading is ``read`` unless an argument names a secret; the engine checks that for every
command, and the judges here add what is specific (patterns are not paths, recursive search,
``sed`` scripts that write or execute).
"""

from __future__ import annotations

from tend.execution.policy.argv import command_name
from tend.execution.policy.knowledge import (
    CHANGE,
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    parse_args,
    read,
    spec,
)

_GREP_VALUES = frozenset(
    {
        "-e",
        "--regexp",
        "-f",
        "--file",
        "-m",
        "--max-count",
        "-A",
        "--after-context",
        "-B",
        "--before-context",
        "-C",
        "--context",
        "-d",
        "--directories",
        "-D",
        "--devices",
        "--label",
        "--include",
        "--exclude",
        "--exclude-from",
        "--exclude-dir",
        "-g",
        "--glob",
        "-t",
        "--type",
        "-T",
        "--type-not",
        "-j",
        "--threads",
        "-M",
        "--max-columns",
        "--max-depth",
        "--pre-glob",
        "-E",
        "--encoding",
        "--ignore-file",
        "--type-add",
        "--sort",
        "--sortr",
        "--max-filesize",
        "--engine",
        "--path-separator",
        "-G",
        "--file-search-regex",
        "--ignore",
        "-r",
        "--replace",
    }
)
_ALWAYS_RECURSIVE = frozenset({"rgrep", "rg", "ag", "ack", "ack-grep"})


def judge_grep(argv: list[str], ctx: Context) -> list[Finding]:
    """``grep`` family: read, unless files read are secrets or a recursive search may reach them.

    The pattern operand is not a path. A recursive search (``-r``, ``rg``, ``ag`` ...) of a tree
    that may hold secrets (``/``, ``/etc``, ``/home/*``, ``/root``, application roots, an
    unknown working directory) is a change.
    """
    name = command_name(argv[0])
    values = set(_GREP_VALUES)
    if name not in _ALWAYS_RECURSIVE:
        values -= {"-r", "-E", "-G", "-T", "-t", "-g", "-j", "-M"}
    parsed = parse_args(argv[1:], values)
    if parsed.has("--pre"):
        return change(ctx, argv, f"{name} --pre runs a program on every file")
    files = parsed.operands
    if not parsed.has("-e", "--regexp", "-f", "--file"):
        files = files[1:]
    if name in {"ag", "ack", "ack-grep"} and parsed.has("-g", "-G"):
        files = parsed.operands
    secret = ctx.secret(files + parsed.values("-f", "--file", "--exclude-from", "--ignore-file"))
    if secret is not None:
        return change(ctx, argv, f"{name} reads {secret}")
    recursive = name in _ALWAYS_RECURSIVE or parsed.has(
        "-r", "-R", "--recursive", "--dereference-recursive"
    )
    recursive = recursive or "recurse" in parsed.values("-d", "--directories")
    if recursive:
        for directory in files or ["."]:
            if ctx.secret_tree(directory):
                return change(
                    ctx, argv, f"{name} searching {display(directory)} recursively may read secrets"
                )
    return read(ctx, argv, f"{name} only reads files")


_SED_READ_COMMANDS = frozenset("pPdDqQ=lnNgGhHxzF{}")


def _skip_delimited(script: str, pos: int, parts: int) -> int:
    """Skip ``parts`` delimited fields starting at the delimiter at ``pos``; -1 on error."""
    if pos >= len(script) or script[pos] in "\\\n":
        return -1
    delimiter = script[pos]
    pos += 1
    for _ in range(parts):
        while pos < len(script) and script[pos] != delimiter:
            pos += 2 if script[pos] == "\\" else 1
        if pos >= len(script):
            return -1
        pos += 1
    return pos


def sed_script_is_read_only(script: str) -> bool:
    """Whether a ``sed`` script only prints (no ``w``/``W``/``r``/``R``/``e`` commands or flags).

    The check is conservative: anything not understood counts as not read-only.

    Args:
        script: The sed script.

    Returns:
        ``True`` when the script cannot write files or run commands.
    """
    pos = 0
    while pos < len(script):
        char = script[pos]
        if char in " \t;\n!" or char.isdigit() or char in "$,~+":
            pos += 1
        elif char in "/\\":
            if char == "\\":
                pos += 1
            pos = _skip_delimited(script, pos, 1)
            if pos < 0:
                return False
            while pos < len(script) and script[pos] in "IM":
                pos += 1
        elif char in _SED_READ_COMMANDS:
            pos += 1
        elif char in ":btT":
            end = script.find(";", pos)
            pos = len(script) if end < 0 else end
        elif char in "aic":
            return "\n" not in script[pos:]
        elif char in "sy":
            pos = _skip_delimited(script, pos + 1, 2)
            if pos < 0:
                return False
            while pos < len(script) and script[pos] not in ";}\n":
                if char == "s" and script[pos] in "weWE":
                    return False
                if char == "y" and script[pos] not in " \t":
                    return False
                pos += 1
        else:
            return False
    return True


def judge_sed(argv: list[str], ctx: Context) -> list[Finding]:
    """``sed``: read when it only prints; ``-i``, script files and ``w``/``e``/``r`` change."""
    parsed = parse_args(argv[1:], {"-e", "--expression", "-f", "--file", "-l", "--line-length"})
    if parsed.has("-i", "--in-place") or any(o.startswith("--in-place") for o, _ in parsed.options):
        return change(ctx, argv, "sed -i edits files in place")
    if parsed.has("-f", "--file"):
        return change(ctx, argv, "sed -f runs a script file that cannot be judged")
    scripts = parsed.values("-e", "--expression")
    files = parsed.operands
    if not scripts:
        scripts, files = files[:1], files[1:]
    if not parsed.has("--sandbox"):
        for script in scripts:
            if not sed_script_is_read_only(script):
                return change(ctx, argv, "the sed script can write files or run commands")
    return read(ctx, argv, "sed without -i only prints its result")


def judge_sort(argv: list[str], ctx: Context) -> list[Finding]:
    """``sort``/``shuf``/``iconv``...: read unless ``-o`` writes a file."""
    name = command_name(argv[0])
    parsed = parse_args(argv[1:], {"-o", "--output", "-k", "--key", "-t", "-S", "-T", "-n"})
    if parsed.has("-o", "--output"):
        return change(ctx, argv, f"{name} -o writes a file")
    return read(ctx, argv, f"{name} only reads files")


def judge_second_operand_writes(argv: list[str], ctx: Context) -> list[Finding]:
    """``uniq IN OUT``/``xxd IN OUT``: a second operand is an output file."""
    name = command_name(argv[0])
    parsed = parse_args(argv[1:], {"-f", "-s", "-w", "-c", "-g", "-l", "-o", "-n", "-C", "-u"})
    if len(parsed.operands) > 1:
        return change(ctx, argv, f"{name} writes its output to {display(parsed.operands[1])}")
    return read(ctx, argv, f"{name} only reads files")


def judge_yq(argv: list[str], ctx: Context) -> list[Finding]:
    """``yq``: read unless ``-i`` edits files in place."""
    parsed = parse_args(argv[1:], {"-o", "--output-format", "-p", "--input-format"})
    if parsed.has("-i", "--inplace"):
        return change(ctx, argv, "yq -i edits files in place")
    return read(ctx, argv, "yq only reads files")


SPECS: list[CommandSpec] = [
    spec(
        "cat tac nl head tail wc cut tr paste join comm diff diff3 cmp md5sum sha1sum sha224sum "
        "sha256sum sha384sum sha512sum b2sum cksum sum strings od hexdump hd base64 base32 basenc "
        "column fold fmt expand unexpand rev readlink realpath dirname basename pwd echo printf "
        "true false test [ seq sleep yes which whereis file stat ls dir vdir tree du zcat "
        "bzcat xzcat zstdcat lz4cat zcmp zdiff jq look numfmt tsort getconf locale tty arch "
        "getopt namei lsof",
        what="files and system information",
    ),
    spec(
        "grep egrep fgrep rgrep zgrep zegrep zfgrep rg ag ack ack-grep",
        judge_grep,
        check_secrets=False,
    ),
    spec("sed", judge_sed),
    spec("sort shuf iconv sdiff", judge_sort),
    spec("uniq xxd", judge_second_operand_writes),
    spec("yq", judge_yq),
    spec(
        "less more most pg view man",
        default=CHANGE,
        reason="{name} is an interactive pager that can run shell commands",
    ),
    spec(
        "vi vim nvim nano emacs ed ex joe mcedit pico",
        default=CHANGE,
        reason="{name} is an interactive editor that can change files",
    ),
    spec(
        "printenv",
        default=CHANGE,
        reason="{name} prints environment variables, which may hold secrets",
    ),
]
