"""Knowledge about commands that delete, overwrite or create files and devices."""

from __future__ import annotations

import re

from tend.execution.policy.argv import UNKNOWN, command_family, command_name, split_words, words
from tend.execution.policy.devices import is_harmless_sink, possible_device
from tend.execution.policy.knowledge import (
    CHANGE,
    CommandSpec,
    Context,
    Finding,
    ParsedArgs,
    change,
    display,
    forbidden,
    option_is,
    parse_args,
    read,
    spec,
)
from tend.execution.policy.paths import PROTECTED_TREES, normalise, protected_tree
from tend.execution.policy.wrappers_ssh import ssh_option_findings

_WIPES_DISK = {"disk", "memory"}
_BLOCK = {"disk", "partition", "memory"}


def _locations(ctx: Context, token: str) -> list[str]:
    return [normalise(token, cwd) for cwd in ctx.cwds]


def _wiped_tree(ctx: Context, token: str, *, top_level_only: bool = False) -> str | None:
    for path in _locations(ctx, token):
        hit = protected_tree(path, globbing=ctx.in_shell)
        if hit is None:
            continue
        if top_level_only and path in PROTECTED_TREES and path.count("/") > 1:
            continue
        return hit
    return None


def _device(ctx: Context, token: str) -> str | None:
    for path in _locations(ctx, token):
        kind = possible_device(path, globbing=ctx.in_shell)
        if kind is not None:
            return kind
    return None


def judge_rm(argv: list[str], ctx: Context) -> list[Finding]:
    """``rm``: a change; recursive removal of ``/`` or a system tree is forbidden."""
    parsed = parse_args(argv[1:])
    if parsed.has("--no-preserve-root"):
        return forbidden(ctx, argv, "rm --no-preserve-root switches off the protection of /")
    if parsed.has("-r", "-R", "--recursive"):
        for target in parsed.operands:
            hit = _wiped_tree(ctx, target)
            if hit is not None:
                return forbidden(ctx, argv, f"rm -r of {display(target)} would wipe {hit}")
        return change(ctx, argv, "rm -r deletes directory trees")
    return change(ctx, argv, "rm deletes files")


def judge_dd(argv: list[str], ctx: Context) -> list[Finding]:
    """``dd``: a change; writing to a raw disk, partition or memory device is forbidden."""
    for arg in argv[1:]:
        if arg.startswith("of="):
            target = arg[3:]
            if _device(ctx, target) in _BLOCK:
                return forbidden(ctx, argv, f"dd would overwrite the raw device {display(target)}")
    return change(ctx, argv, "dd copies raw data and can overwrite files")


def judge_wiper(argv: list[str], ctx: Context) -> list[Finding]:
    """``mkfs*``, ``mkswap``, ``wipefs``, ``blkdiscard``, ``shred``, ``sgdisk``, ``cryptsetup``.

    Aimed at a whole disk (``/dev/sda``, ``/dev/nvme0n1``, ``/dev/md0``, ``/dev/mapper/*`` ...)
    they are forbidden; on a partition or a file they are a change. Read-only modes
    (``wipefs`` without ``-a``, ``sgdisk -p``, ``cryptsetup status``) are read.
    """
    name = command_name(argv[0])
    family = command_family(name)
    args = argv[1:]
    parsed = parse_args(args, {"-o", "--offset", "-t", "--types", "-b", "--backup"})
    if family == "wipefs" and not parsed.has("-a", "--all", "-o", "--offset"):
        return read(ctx, argv, "wipefs without -a only lists signatures")
    if family == "sgdisk":
        wipes = parsed.has("-Z", "--zap-all", "-z", "--zap", "-o", "--clear")
        if not wipes and all(
            opt in {"-p", "--print", "-v", "--verify"} for opt, _ in parsed.options
        ):
            return read(ctx, argv, "sgdisk --print only shows the partition table")
        if not wipes:
            return change(ctx, argv, "sgdisk changes the partition table")
    if family == "cryptsetup":
        actions = set(parsed.operands)
        if not actions & {"luksFormat", "erase", "luksErase", "reencrypt"}:
            if actions & {"status", "luksDump", "isLuks", "luksUUID", "tcryptDump", "bitlkDump"}:
                return read(ctx, argv, "cryptsetup only reads volume metadata")
            return change(ctx, argv, "cryptsetup changes encrypted volumes")
    for arg in args:
        if _device(ctx, arg) in _WIPES_DISK:
            return forbidden(ctx, argv, f"{name} on {display(arg)} would wipe a whole disk")
    return change(ctx, argv, f"{name} destroys the data it is aimed at")


def judge_perms(argv: list[str], ctx: Context) -> list[Finding]:
    """``chmod``/``chown``/``chgrp``: a change; ``-R`` on ``/`` or a top-level tree is forbidden."""
    name = command_name(argv[0])
    parsed = parse_args(argv[1:], {"--reference", "--from"})
    if parsed.has("-R", "--recursive"):
        targets = parsed.operands if parsed.has("--reference") else parsed.operands[1:]
        for target in targets:
            hit = _wiped_tree(ctx, target, top_level_only=True)
            if hit is not None:
                return forbidden(ctx, argv, f"{name} -R of {display(target)} would break {hit}")
    return change(ctx, argv, f"{name} changes file ownership or permissions")


_COPY_VALUES = {
    "rsync": words(
        "-e --rsh --rsync-path -f --filter --exclude --include -T --temp-dir --suffix "
        "--backup-dir --chmod --log-file --password-file --files-from --exclude-from "
        "--include-from --compare-dest --link-dest --copy-dest --partial-dir"
    ),
    "scp": words("-c -D -F -i -J -l -o -P -S -X"),
    "sftp": words("-B -b -c -D -F -i -J -l -o -P -R -S -s -X"),
}


def _remote_shell(name: str, parsed: ParsedArgs, ctx: Context, argv: list[str]) -> list[Finding]:
    """Judge what ``rsync -e``/``--rsync-path`` and ``scp``/``sftp -S``/``-o`` run."""
    findings: list[Finding] = []
    for option, value in parsed.options:
        if not value:
            continue
        if name == "rsync" and option_is(option, ["-e", "--rsh", "--rsync-path"]):
            findings += ctx.run_shell(value, name)
        elif name != "rsync" and option in {"-S", "-D"}:
            findings += ctx.run([value], name)
    if name != "rsync":
        findings += ssh_option_findings(name, parsed.values("-o"), ctx, argv)
    return findings


def judge_copy(argv: list[str], ctx: Context) -> list[Finding]:
    """``cp``/``mv``/``install``/``rsync``/``scp`` ...: a change; a raw device target is forbidden.

    The remote shell of ``rsync -e CMD`` and the ssh options of ``scp``/``sftp``
    (``-o ProxyCommand=CMD``, ``-S PROG``) are judged too.
    """
    name = command_name(argv[0])
    values = _COPY_VALUES.get(name, words("-S --suffix -m --mode -t --target-directory"))
    parsed = parse_args(argv[1:], values)
    findings = _remote_shell(name, parsed, ctx, argv) if name in _COPY_VALUES else []
    if name == "sftp":
        return [*findings, *change(ctx, argv, "sftp transfers files with another host")]
    targets = parsed.values("-t", "--target-directory") or parsed.operands[-1:]
    for target in targets:
        if _device(ctx, target) in _BLOCK:
            return forbidden(ctx, argv, f"{name} would overwrite the raw device {display(target)}")
    return [*change(ctx, argv, f"{name} creates or overwrites files"), *findings]


def judge_tee(argv: list[str], ctx: Context) -> list[Finding]:
    """``tee``: read without files (or only to ``/dev/null``), change with files."""
    parsed = parse_args(argv[1:])
    writes = []
    for target in parsed.operands:
        if _device(ctx, target) in _BLOCK:
            return forbidden(ctx, argv, f"tee would write to the raw device {display(target)}")
        if not all(is_harmless_sink(path) for path in _locations(ctx, target)):
            writes.append(target)
    if writes:
        return change(ctx, argv, f"tee writes to {display(writes[0])}")
    return read(ctx, argv, "tee without files only copies its input to its output")


_FIND_GLOBAL = words(
    "-depth -xdev -mount -noleaf -daystart -follow -ignore_readdir_race -noignore_readdir_race "
    "-warn -nowarn -maxdepth -mindepth -regextype -delete -print -print0 -ls -prune -quit "
    "( ) ! -not -a -o -and -or"
)
_FIND_VALUE = words(
    "-name -iname -path -ipath -wholename -iwholename -regex -iregex -lname -ilname -newer "
    "-anewer -cnewer -perm -type -xtype -user -group -uid -gid -size -mtime -mmin -atime -amin "
    "-ctime -cmin -used -inum -links -samefile -fstype -context -maxdepth -mindepth -regextype "
    "-printf -files0-from"
)
_FIND_WRITES = words("-fprint -fprint0 -fprintf -fls")
_FIND_EXEC = words("-exec -execdir -ok -okdir")


def judge_find(argv: list[str], ctx: Context) -> list[Finding]:
    """``find``: read; ``-delete`` and ``-fprint*`` change; ``-exec`` commands are judged.

    ``{}`` in an ``-exec`` command stands for each starting point and anything below it, so
    ``find / -exec rm -rf {} +`` is judged like ``rm -rf /``. An unfiltered ``-delete`` of a
    system tree is forbidden.
    """
    args = argv[1:]
    index = 0
    while index < len(args) and (
        args[index] in {"-H", "-L", "-P"} or re.fullmatch(r"-O\d", args[index])
    ):
        index += 1
    if index < len(args) and args[index] == "-D":
        index += 2
    starts: list[str] = []
    while index < len(args) and not args[index].startswith(("-", "(", "!", ")", ",")):
        starts.append(args[index])
        index += 1
    starts = starts or ["."]
    findings: list[Finding] = []
    filtered = deletes = False
    while index < len(args):
        primary = args[index]
        index += 1
        if primary in _FIND_EXEC:
            end = index
            while end < len(args) and args[end] not in {";", "+"}:
                end += 1
            command = args[index:end]
            index = end + 1
            findings.extend(_judge_exec(command, starts, ctx))
        elif primary in _FIND_WRITES:
            target = args[index] if index < len(args) else ""
            if _device(ctx, target) in _BLOCK:
                return forbidden(ctx, argv, f"find {primary} would write to {display(target)}")
            findings += change(ctx, argv, f"find {primary} writes to a file")
            index += 1 if primary != "-fprintf" else 2
        elif primary == "-delete":
            deletes = True
        elif primary == "-files0-from":
            findings += change(ctx, argv, "find -files0-from reads its starting points from a file")
            index += 1
        else:
            if primary not in _FIND_GLOBAL:
                filtered = filtered or primary.startswith("-")
            if primary in _FIND_VALUE:
                index += 1
    if deletes:
        for start in starts:
            hit = _wiped_tree(ctx, start)
            if hit is not None and not filtered:
                return forbidden(ctx, argv, f"find {display(start)} -delete would wipe {hit}")
        findings += change(ctx, argv, "find -delete deletes the files it finds")
    secret = ctx.secret(starts)
    if secret is not None:
        findings += change(ctx, argv, f"find lists {secret}")
    return findings or read(ctx, argv, "find only lists files")


def _judge_exec(command: list[str], starts: list[str], ctx: Context) -> list[Finding]:
    if not command:
        return change(ctx, ["find"], "find -exec without a command is malformed")
    if not any("{}" in arg for arg in command):
        return ctx.run(command, "find")
    findings: list[Finding] = []
    for start in starts[:8]:
        below = start.rstrip("/") + "/" + UNKNOWN
        for stand_in in (start, below):
            findings += ctx.run([arg.replace("{}", stand_in) for arg in command], "find")
    return findings


_TAR_VALUE = words(
    "-f --file -C --directory -T --files-from -X --exclude-from -b --blocking-factor -H --format "
    "-L --tape-length -N --newer -V --label -K --starting-file --exclude --owner --group --mode "
    "--mtime -I -F -g --to-command --use-compress-program --info-script --new-volume-script "
    "--rsh-command --rmt-command --listed-incremental --index-file --volno-file "
    "--checkpoint-action"
)
# Options whose value tar runs through ``sh -c`` (``-I`` and ``-F`` included).
_TAR_RUNS = split_words(
    "--to-command --use-compress-program --info-script --new-volume-script --rsh-command "
    "--rmt-command"
)
_TAR_WRITES = split_words("--listed-incremental --index-file --volno-file")
_TAR_MODES_READ = words("-t --list -d --diff --compare")
_TAR_MODES_WRITE = words(
    "-x --extract --get -c --create -r --append -u --update -A --catenate --concatenate --delete"
)


def _tar_runs(parsed: ParsedArgs, ctx: Context, argv: list[str]) -> list[Finding]:
    """Findings for tar options that run programs or write files besides the archive."""
    findings: list[Finding] = []
    for option, value in parsed.options:
        action = option_is(option, ["--checkpoint-action"]) and option != "--checkpoint"
        if option in {"-I", "-F"} or option_is(option, _TAR_RUNS) or action:
            command = value or ""
            if action:
                if "exec" not in command:
                    continue
                command = command.partition("exec=")[2]
            findings += change(ctx, argv, f"tar {option} runs programs")
            if command:
                findings += ctx.run_shell(command, "tar")
        elif option == "-g" or option_is(option, _TAR_WRITES):
            findings += change(ctx, argv, f"tar {option} writes a file besides the archive")
    return findings


def judge_tar(argv: list[str], ctx: Context) -> list[Finding]:
    """``tar``: listing (``-t``) and comparing (``-d``) are read; anything else is a change.

    Options that run a command (``--to-command``, ``-I``, ``--checkpoint-action=exec=``,
    ``-F`` ...) are at least change and their command is judged; an archive on another host
    (``-f host:file``) is reached through ``rsh``/``ssh`` (change).
    """
    args = list(argv[1:])
    if args and not args[0].startswith("-"):
        args[0] = "-" + args[0]
    parsed = parse_args(args, _TAR_VALUE)
    findings = _tar_runs(parsed, ctx, argv)
    archives = parsed.values("-f", "--file")
    if not parsed.has("--force-local") and any(
        ":" in archive.split("/", 1)[0] for archive in archives
    ):
        findings += change(ctx, argv, "tar -f HOST:FILE reaches another host through rsh/ssh")
    if findings:
        return findings
    modes = {option for option, _ in parsed.options}
    writes = any(option_is(option, _TAR_MODES_WRITE) for option in modes)
    if any(option_is(option, _TAR_MODES_READ) for option in modes) and not writes:
        return read(ctx, argv, "tar -t only lists an archive")
    return change(ctx, argv, "tar creates or extracts archives")


def judge_compressor(argv: list[str], ctx: Context) -> list[Finding]:
    """``gzip``/``xz``/``bzip2``/``zstd``...: read when writing to stdout, listing or testing."""
    name = command_name(argv[0])
    parsed = parse_args(argv[1:], {"-S", "--suffix", "-T", "--threads", "-o", "--output"})
    if parsed.has("-o", "--output"):
        return change(ctx, argv, f"{name} -o writes a file")
    if parsed.has("-c", "--stdout", "--to-stdout", "-l", "--list", "-t", "--test"):
        return read(ctx, argv, f"{name} only writes to its output")
    if not parsed.operands:
        return read(ctx, argv, f"{name} without files filters its input to its output")
    return change(ctx, argv, f"{name} replaces the files it compresses or decompresses")


def judge_unzip(argv: list[str], ctx: Context) -> list[Finding]:
    """``unzip -l``/``-t``/``-p``/``-Z`` only read; other uses extract files."""
    parsed = parse_args(argv[1:], {"-d", "-x"})
    if parsed.has("-l", "-t", "-p", "-Z", "-v", "-z"):
        return read(ctx, argv, "unzip only lists or tests the archive")
    return change(ctx, argv, "unzip extracts files")


SPECS: list[CommandSpec] = [
    spec("rm", judge_rm),
    spec("dd", judge_dd),
    spec("mkfs mkswap wipefs blkdiscard shred sgdisk cryptsetup", judge_wiper, raw_devices_ok=True),
    spec("chmod chown chgrp", judge_perms),
    spec("cp mv install rsync scp sftp", judge_copy),
    spec("tee", judge_tee),
    spec("find", judge_find, check_secrets=False),
    spec("tar", judge_tar),
    spec(
        "gzip gunzip bzip2 bunzip2 xz unxz lzma unlzma zstd unzstd lz4 pigz unpigz",
        judge_compressor,
    ),
    spec("unzip", judge_unzip),
    spec(
        "ln mkdir rmdir unlink touch truncate fallocate mktemp mkfifo mknod link rename "
        "split csplit patch chattr setfacl zip 7z",
        default=CHANGE,
        what="files",
    ),
    spec("sync"),
    spec("lsattr getfacl", what="file attributes"),
]
