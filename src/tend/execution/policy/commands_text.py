"""Knowledge about commands that read and filter files: ``cat``, ``grep``, ``sed`` and friends.

Reading is ``read`` unless an argument names a secret; the engine checks that for every
command, and the judges here add what is specific (patterns are not paths, recursive search,
``sed`` scripts that write or execute).
"""

from __future__ import annotations

import re

from tend.execution.policy.argv import command_name, words
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


_SORT_VALUES = {
    "sort": words(
        "-o --output -k --key -t --field-separator -S --buffer-size -T --temporary-directory "
        "--compress-program --batch-size --files0-from --random-source --parallel --sort"
    ),
    "shuf": words("-n --head-count -o --output -i --input-range --random-source"),
    "iconv": words("-f --from-code -t --to-code -o --output"),
    "sdiff": words("-o --output -w --width -I --ignore-matching-lines --tabsize --diff-program"),
}
_RUNS_PROGRAM = {"sort": "--compress-program", "sdiff": "--diff-program"}


def judge_sort(argv: list[str], ctx: Context) -> list[Finding]:
    """``sort``/``shuf``/``iconv``/``sdiff``: read unless ``-o`` writes a file.

    ``sort --compress-program=PROG`` and ``sdiff --diff-program=PROG`` run ``PROG``: at least
    change, and ``PROG`` is judged.
    """
    name = command_name(argv[0])
    parsed = parse_args(argv[1:], _SORT_VALUES[name])
    findings: list[Finding] = []
    program = _RUNS_PROGRAM.get(name)
    if program is not None and parsed.has(program):
        findings += change(ctx, argv, f"{name} {program} runs a program")
        for value in parsed.values(program):
            findings += ctx.run([value], name)
    if parsed.has("-o", "--output"):
        findings += change(ctx, argv, f"{name} -o writes a file")
    return findings or read(ctx, argv, f"{name} only reads files")


_SECOND_OPERAND_VALUES = {
    "uniq": words("-f --skip-fields -s --skip-chars -w --check-chars"),
    "xxd": words("-c -g -l -o -s -n -R"),
}


def judge_second_operand_writes(argv: list[str], ctx: Context) -> list[Finding]:
    """``uniq IN OUT``/``xxd IN OUT``: a second operand is an output file."""
    name = command_name(argv[0])
    parsed = parse_args(argv[1:], _SECOND_OPERAND_VALUES[name])
    if len(parsed.operands) > 1:
        return change(ctx, argv, f"{name} writes its output to {display(parsed.operands[1])}")
    return read(ctx, argv, f"{name} only reads files")


def judge_tree(argv: list[str], ctx: Context) -> list[Finding]:
    """``tree``: read, unless ``-o FILE`` writes the listing to a file."""
    values = words("-L -P -I -o -H -T --charset --filelimit --timefmt --sort --fromfile")
    parsed = parse_args(argv[1:], values)
    if parsed.has("-o"):
        return change(ctx, argv, "tree -o writes its listing to a file")
    return read(ctx, argv, "tree only lists files")


_DIFF_VALUES = {
    "diff": words(
        "-C -U -F -I -x -X -S -L -D -W --label --from-file --to-file --exclude --exclude-from "
        "--starting-file --ignore-matching-lines --ifdef --line-format --old-line-format "
        "--new-line-format --unchanged-line-format --old-group-format --new-group-format "
        "--changed-group-format --unchanged-group-format --tabsize --width --palette "
        "--horizon-lines --show-function-line --context --unified"
    ),
    "diff3": words("-L --label --diff-program"),
    "file": words("-m --magic-file -f --files-from -e --exclude -F --separator -P --parameter"),
}


def judge_diff(argv: list[str], ctx: Context) -> list[Finding]:
    """``diff``/``diff3``/``file``: read, with the options that run programs or print secrets.

    ``diff -r``/``-N`` of a tree that may hold secrets prints them (change);
    ``diff3 --diff-program=PROG`` runs ``PROG``; ``file -C`` compiles a magic file (writes).
    """
    name = command_name(argv[0])
    values = _DIFF_VALUES[name]
    parsed = parse_args(argv[1:], values)
    if name == "file":
        if parsed.has("-C", "--compile"):
            return change(ctx, argv, "file -C compiles a magic file and writes it")
        return read(ctx, argv, "file only reads files")
    if parsed.has("--diff-program"):
        findings = change(ctx, argv, f"{name} --diff-program runs a program")
        for value in parsed.values("--diff-program"):
            findings += ctx.run([value], name)
        return findings
    trees = parsed.values("--from-file", "--to-file") + parsed.operands
    if parsed.has("-r", "--recursive", "-N", "--new-file", "--unidirectional-new-file"):
        for operand in trees or ["."]:
            if ctx.secret_tree(operand):
                reason = f"{name} -r/-N of {display(operand)} may print secrets"
                return change(ctx, argv, reason)
    return read(ctx, argv, f"{name} only compares files")


_ENV_RE = re.compile(r"\benv\b|\$ENV|\bstrenv\b")


def judge_yq(argv: list[str], ctx: Context) -> list[Finding]:
    """``jq``/``yq``: read unless ``-i`` edits files in place or the program reads ``env``.

    ``jq -n env`` prints the whole environment, which may hold secrets (like ``printenv``).
    """
    name = command_name(argv[0])
    values = {"-o", "--output-format", "-p", "--input-format", "-f", "--from-file", "-L"}
    values |= {"--arg", "--argjson", "--slurpfile", "--rawfile", "--indent", "--tab"}
    parsed = parse_args(argv[1:], values)
    if name == "yq" and parsed.has("-i", "--inplace"):
        return change(ctx, argv, "yq -i edits files in place")
    if any(_ENV_RE.search(arg) for arg in parsed.operands[:1] + parsed.values("-f", "--from-file")):
        return change(ctx, argv, f"{name} env prints environment variables, which may hold secrets")
    return read(ctx, argv, f"{name} only reads files")


SPECS: list[CommandSpec] = [
    spec(
        "cat tac nl head tail wc cut tr paste join comm cmp md5sum sha1sum sha224sum "
        "sha256sum sha384sum sha512sum b2sum cksum sum strings od hexdump hd base64 base32 basenc "
        "column fold fmt expand unexpand rev readlink realpath dirname basename pwd echo printf "
        "true false test [ seq sleep yes which whereis stat ls dir vdir du zcat "
        "bzcat xzcat zstdcat lz4cat zcmp zdiff look numfmt tsort getconf locale tty arch "
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
    spec("tree", judge_tree),
    spec("diff diff3 file", judge_diff),
    spec("uniq xxd", judge_second_operand_writes),
    spec("jq yq", judge_yq),
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
