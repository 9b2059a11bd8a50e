"""Knowledge about storage and hardware tools: mounts, partitions, LVM, RAID, disks, NICs.

Naming a raw disk or partition is fine for these tools (they read metadata, not contents);
destructive modes are a change, and wiping a whole disk is forbidden.
"""

from __future__ import annotations

from tend.execution.policy.argv import command_name, words
from tend.execution.policy.devices import device_kind
from tend.execution.policy.knowledge import (
    CHANGE,
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    forbidden,
    parse_args,
    read,
    spec,
)
from tend.execution.policy.paths import normalise

_LISTING = words(
    "-l --show-labels -t --types -v --verbose -h --help -V --version --show -s --summary "
    "--noheadings --raw --bytes"
)


def judge_mount(argv: list[str], ctx: Context) -> list[Finding]:
    """``mount``/``swapon``: listing without operands is read; mounting is a change."""
    name = command_name(argv[0])
    parsed = parse_args(argv[1:], {"-t", "--types", "-O", "--test-opts"})
    if not parsed.operands and all(option in _LISTING for option, _ in parsed.options):
        return read(ctx, argv, f"{name} without operands only lists what is mounted")
    return change(ctx, argv, f"{name} changes what is mounted")


# Options that only read, per command. With ``strict`` commands every option must be one of them;
# for the others one of them is enough (they select a read-only mode).
_READ_OPTIONS: dict[str, frozenset[str]] = {
    "passwd": words("-S --status -a --all"),
    "chage": words("-l --list"),
    "visudo": words("-c --check -f --file -q --quiet -s --strict"),
    "pwck": words("-r --read-only -q --quiet"),
    "grpck": words("-r --read-only"),
    "chkconfig": words("--list"),
    "modprobe": words("-n --dry-run -c --showconfig -D --show-depends"),
    "mdadm": words(
        "-D --detail -E --examine -Q --query --detail-platform -s --scan -b --brief -v "
        "--verbose -Y --export"
    ),
    "tune2fs": words("-l"),
    "blockdev": words(
        "--report --getsize64 --getsz --getss --getbsz --getro --getpbsz --getra --getsize "
        "--getiomin --getioopt -q -v"
    ),
    "fdisk": words("-l --list -u --units -b --sector-size"),
    "sfdisk": words(
        "-l --list -d --dump -J --json -s --show-size -V --verify -g --show-geometry -q --quiet"
    ),
    "hdparm": words("-I -i -g -C -t -T"),
    "smartctl": words(
        "-a --all -x --xall -i --info -H --health -A --attributes -c --capabilities -l --log "
        "--scan --scan-open -j --json -d --device -q --quietmode"
    ),
    "ethtool": words(
        "-i -S -k -g -a -c -l -m -P -T --driver --statistics --show-features --show-ring "
        "--show-pause --show-coalesce --show-channels --module-info --show-eee --show-permaddr "
        "--show-time-stamping --json -h --help --version"
    ),
}
_LENIENT = words("modprobe")
"""Commands where one read option is enough (``modprobe -n`` is a dry run of everything).

For every other command all options must be read options: ``tune2fs -l -O ^has_journal``
lists the superblock *and* removes the journal, ``mdadm -D md0 --stop md0`` stops the array.
"""


def _option_names(args: list[str], *, split: bool = True) -> set[str]:
    """Option names given; short clusters are split (``-Ds`` is ``-D`` and ``-s``)."""
    names: set[str] = set()
    for arg in args:
        if arg.startswith("--") or (arg.startswith("-") and not split):
            names.add(arg.split("=", 1)[0])
        elif arg.startswith("-") and len(arg) > 1:
            names.update("-" + char for char in arg[1:])
    return names


def judge_read_options(argv: list[str], ctx: Context) -> list[Finding]:
    """Commands that only read with listing options (``passwd -S``, ``fdisk -l`` ...)."""
    name = command_name(argv[0])
    options = _option_names(argv[1:], split=name != "smartctl")
    if name == "fuser":
        ok = not options & {"-k", "--kill"}
    elif name in _LENIENT:
        ok = bool(options & _READ_OPTIONS[name])
    else:
        ok = name == "ethtool" or bool(options)
        ok = ok and all(
            option in _READ_OPTIONS[name] or (name == "smartctl" and option.startswith("-l"))
            for option in options
        )
    if ok:
        return read(ctx, argv, f"{name} with these options only reads state")
    return change(ctx, argv, f"{name} changes system configuration")


_SCAN_CHANGES = words("--cache -a --activate --mknodes --notifydbus --refresh")


def judge_lvm_scan(argv: list[str], ctx: Context) -> list[Finding]:
    """``pvscan``/``vgscan``/``lvscan``: read, except ``--cache -aay`` and ``--mknodes``."""
    name = command_name(argv[0])
    if _option_names(argv[1:]) & _SCAN_CHANGES:
        return change(ctx, argv, f"{name} --cache/--activate/--mknodes changes LVM state")
    return read(ctx, argv, f"{name} only reads storage information")


def judge_parted(argv: list[str], ctx: Context) -> list[Finding]:
    """``parted -l``/``DEV print`` are read; ``mklabel`` on a whole disk is forbidden."""
    parsed = parse_args(argv[1:], {"-a", "--align"})
    commands = parsed.operands[1:]
    if parsed.has("-l", "--list", "-v", "--version", "-h", "--help") or (
        commands and commands[-1] in {"print", "p"} and len(commands) in {1, 3}
    ):
        return read(ctx, argv, "parted print only shows the partition table")
    if {"mklabel", "mktable"} & set(commands):
        device = parsed.operands[0]
        if any(device_kind(normalise(device, cwd)) == "disk" for cwd in ctx.cwds):
            return forbidden(ctx, argv, f"parted mklabel would wipe the disk {display(device)}")
    return change(ctx, argv, "parted changes partition tables")


SPECS: list[CommandSpec] = [
    spec("mount swapon", judge_mount, raw_devices_ok=True),
    spec(" ".join([*_READ_OPTIONS, "fuser"]), judge_read_options, raw_devices_ok=True),
    spec("parted", judge_parted, raw_devices_ok=True),
    spec("pvscan vgscan lvscan", judge_lvm_scan, raw_devices_ok=True),
    spec(
        "lsblk findmnt blkid pvs vgs lvs pvdisplay vgdisplay lvdisplay dumpe2fs xfs_info df",
        what="storage information",
        raw_devices_ok=True,
    ),
    spec(
        "umount swapoff pvcreate pvremove pvresize pvmove vgcreate vgremove vgextend vgreduce "
        "vgchange vgrename lvcreate lvremove lvextend lvreduce lvresize lvchange lvrename "
        "resize2fs xfs_growfs fsck e2label",
        default=CHANGE,
        what="storage configuration",
        raw_devices_ok=True,
    ),
]
