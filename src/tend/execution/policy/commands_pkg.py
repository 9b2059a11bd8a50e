"""Knowledge about package managers: listing, showing and searching are read; the rest change."""

from __future__ import annotations

from tend.execution.policy.argv import command_family, command_name, words
from tend.execution.policy.knowledge import (
    READ,
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    option_is,
    parse_args,
    read,
    spec,
)

_APT_READ = words(
    "list show search policy depends rdepends showsrc changelog madison pkgnames stats dump "
    "showpkg unmet help why why-not versions dotty xvcg dumpavail"
)
_APT_NO_SIMULATION = words("update clean autoclean source download edit-sources changelog")
_APT_SIMULATE = frozenset({"-s", "--simulate", "--just-print", "--dry-run", "--recon", "--no-act"})


def judge_apt(argv: list[str], ctx: Context) -> list[Finding]:
    """``apt``/``apt-get``/``aptitude``: queries and simulations are read, the rest change.

    ``-o``/``-c`` make any use a change, as configuration can add hooks that run commands.
    """
    name = command_name(argv[0])
    parsed = parse_args(
        argv[1:], {"-o", "--option", "-c", "--config-file", "-t", "--target-release", "-a"}
    )
    if not parsed.operands:
        return read(ctx, argv, f"{name} without a subcommand only prints help")
    sub = parsed.operands[0]
    if parsed.has("-o", "--option", "-c", "--config-file"):
        return change(ctx, argv, f"{name} -o/-c can configure hooks that run commands")
    if sub in _APT_READ:
        return read(ctx, argv, f"{name} {sub} only reads package information")
    if parsed.has(*_APT_SIMULATE) and sub not in _APT_NO_SIMULATION:
        return read(ctx, argv, f"{name} {display(sub)} --simulate changes nothing")
    return change(ctx, argv, f"{name} {display(sub)} changes installed packages")


_DPKG_READ = words(
    "-l --list -L --listfiles -s --status -S --search -p --print-avail --get-selections "
    "--print-architecture --print-foreign-architectures -C --audit -V --verify "
    "--compare-versions --version --help -c --contents -I --info -f --field"
)


def judge_dpkg(argv: list[str], ctx: Context) -> list[Finding]:
    """``dpkg``/``dpkg-deb``: query actions are read; installing or removing changes."""
    name = command_name(argv[0])
    options = {arg.split("=", 1)[0] for arg in argv[1:] if arg.startswith("--")}
    options |= {
        "-" + char for arg in argv[1:] if arg[:1] == "-" and arg[1:2] != "-" for char in arg[1:]
    }
    if options & _DPKG_READ and not options - _DPKG_READ - {"-W", "--show", "-f", "--showformat"}:
        return read(ctx, argv, f"{name} only queries the package database")
    return change(ctx, argv, f"{name} changes installed packages")


def judge_rpm(argv: list[str], ctx: Context) -> list[Finding]:
    """``rpm``: query (``-q``) and verify (``-V``) modes are read; others change packages."""
    parsed = parse_args(
        argv[1:],
        {"--root", "--dbpath", "--qf", "--queryformat", "-E", "--eval", "--pipe", "--define", "-D"},
    )
    if parsed.has("-E", "--eval", "--pipe", "--define", "-D"):
        return change(ctx, argv, "rpm --eval/--pipe/--define can run shell commands")
    if parsed.has("--dbpath", "--macros", "--rcfile", "--load") or any(
        "%(" in arg or "%{lua" in arg or "%[" in arg for arg in argv[1:]
    ):
        return change(ctx, argv, "rpm expands macros in --dbpath/--macros, which can run commands")
    first = parsed.options[0][0] if parsed.options else ""
    if first in {
        "-q",
        "--query",
        "-V",
        "--verify",
        "--querytags",
        "--showrc",
        "--version",
        "--help",
    }:
        return read(ctx, argv, "rpm -q only queries the package database")
    return change(ctx, argv, "rpm changes installed packages")


def judge_pacman(argv: list[str], ctx: Context) -> list[Finding]:
    """``pacman``: ``-Q``, ``-Ss``/``-Si``/``-Sl``, ``-F`` queries and ``-T`` are read."""
    parsed = parse_args(argv[1:], {"-b", "--dbpath", "-r", "--root", "--config", "--cachedir"})
    names = {option for option, _ in parsed.options}
    if names & {"-Q", "--query", "-T", "--deptest", "-V", "--version", "-h", "--help"}:
        return read(ctx, argv, "pacman -Q only queries the package database")
    if names & {"-S", "--sync"}:
        if names & {
            "-y",
            "--refresh",
            "-u",
            "--sysupgrade",
            "-c",
            "--clean",
            "-w",
            "--downloadonly",
        }:
            return change(ctx, argv, "pacman -Sy/-Su/-Sc changes packages or their database")
        if names & {
            "-s",
            "--search",
            "-i",
            "--info",
            "-l",
            "--list",
            "-g",
            "--groups",
            "-p",
            "--print",
        }:
            return read(ctx, argv, "pacman -Ss/-Si only reads package information")
    if names & {"-F", "--files"} and not names & {"-y", "--refresh"}:
        return read(ctx, argv, "pacman -F only queries the files database")
    return change(ctx, argv, "pacman changes installed packages")


def judge_two_level(argv: list[str], ctx: Context) -> list[Finding]:
    """Package managers with read-only second-level subcommands (``pip cache list`` ...)."""
    name = command_name(argv[0])
    table = _TWO_LEVEL[command_family(name)]
    parsed = parse_args(argv[1:], table.get("values", frozenset()))
    ops = parsed.operands
    risky = _RISKY_OPTIONS.get(command_family(name), ())
    for option, _ in parsed.options:
        if option_is(option, risky) or option.startswith(tuple(r for r in risky if r[1] == "-")):
            return change(ctx, argv, f"{name} {option} loads code or configuration, or writes")
    if not ops:
        return read(ctx, argv, f"{name} without a subcommand only prints help")
    if name == "npm" and ops[0] == "help":
        return change(ctx, argv, "npm help runs man or a web browser")
    if ops[0] in table["read"]:
        return read(ctx, argv, f"{name} {ops[0]} only reads package information")
    nested = table.get(ops[0])
    if nested is not None and (len(ops) == 1 or ops[1] in nested):
        return read(ctx, argv, f"{name} {' '.join(ops[:2])} only reads package information")
    if name == "snap" and ops[0] == "refresh" and parsed.has("--list", "--time"):
        return read(ctx, argv, "snap refresh --list only lists pending updates")
    return change(ctx, argv, f"{name} {display(ops[0])} changes installed software")


# Options that load plugins or configuration (which can run code), run another interpreter
# or write a log: ``dnf --setopt=pluginpath=...``, ``pip --python PATH``, ``npm --browser``.
_RISKY_OPTIONS: dict[str, tuple[str, ...]] = {
    "dnf": ("-c", "--config", "--setopt", "--installroot", "--enableplugin", "--pluginpath"),
    "zypper": ("--config", "-c", "--plus-repo", "-p"),
    "pip": ("--python", "--log", "--log-file", "--exists-action"),
    "npm": (
        "--browser",
        "--viewer",
        "--editor",
        "--userconfig",
        "--globalconfig",
        "--script-shell",
        "--shell",
        "--node-options",
    ),
}

_TWO_LEVEL: dict[str, dict[str, frozenset[str]]] = {
    "dnf": {
        "read": words(
            "list info search provides whatprovides repolist repoinfo repoquery deplist "
            "check-update list-updates updateinfo version help grouplist groupinfo"
        ),
        "history": words("list info userinstalled"),
        "module": words("list info provides"),
        "group": words("list info summary"),
        "values": words(
            "-c --config --installroot --releasever --setopt -x --exclude --enablerepo "
            "--disablerepo --repo --repoid -d --debuglevel -e --errorlevel --comment"
        ),
    },
    "zypper": {
        "read": words(
            "search se info if list-updates lu list-patches lp patches packages pa products pd "
            "patterns pt repos lr services ls locks ll what-provides wp patch-check pchk "
            "search-packages versioncmp vcmp targetos tos licenses ps needs-rebooting help"
        ),
        "values": words(
            "--root -R --config -c --reposd-dir -D --cache-dir -C --userdata --plus-repo -p"
        ),
    },
    "apk": {
        "read": words("info search list policy stats version dot audit manifest verify query"),
        "values": words("-X --repository -p --root --arch --cache-dir --keys-dir"),
    },
    "snap": {
        "read": words(
            "list info find search version services logs changes change tasks connections "
            "interfaces known aliases get warnings model whoami routine help"
        ),
    },
    "flatpak": {
        "read": words(
            "list info search remotes remote-ls remote-info history ps documents permissions "
            "permission-show"
        ),
    },
    "pip": {
        "read": words("list show freeze check search index inspect debug help hash"),
        "cache": words("list dir info"),
        "config": words("list get debug"),
        "values": words(
            "--python --log --log-file --proxy --retries --timeout --cert --cache-dir "
            "--exists-action"
        ),
    },
    "gem": {
        "read": words(
            "list search info query contents dependency environment which help outdated "
            "specification"
        ),
    },
    "npm": {
        "read": words("ls list view info search outdated help explain why root prefix bin"),
        "config": words("get list"),
    },
}

SPECS: list[CommandSpec] = [
    spec("apt apt-get aptitude", judge_apt),
    spec(
        "apt-cache",
        what="package information",
        read_subcommands=" ".join(_APT_READ),
        change_subcommands="gencaches",
        no_subcommand=READ,
    ),
    spec(
        "apt-mark",
        what="package marks",
        read_subcommands="showmanual showauto showhold showinstall showremove showpurge",
    ),
    spec("dpkg dpkg-deb", judge_dpkg),
    spec("dpkg-query", what="the package database"),
    spec("rpm", judge_rpm),
    spec("pacman", judge_pacman),
    spec(" ".join(_TWO_LEVEL), judge_two_level),
]
