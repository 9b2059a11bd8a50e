"""Knowledge about system administration commands: services, logs, kernel, users, power."""

from __future__ import annotations

import re

from tend.execution.policy.argv import command_name, split_words, words
from tend.execution.policy.knowledge import (
    CHANGE,
    READ,
    CommandSpec,
    Context,
    Finding,
    change,
    display,
    parse_args,
    read,
    spec,
)

_SYSTEMCTL_VALUES = (
    "-t --type -p --property -P --state -H --host -M --machine -n --lines -o --output -s "
    "--signal --kill-whom --kill-value --job-mode --root --image --image-policy --what "
    "--timestamp --boot-loader-entry --boot-loader-menu --reboot-argument --message --when "
    "--preset-mode --drop-in --check-inhibitors"
)


def judge_date(argv: list[str], ctx: Context) -> list[Finding]:
    """``date``: read, unless ``-s``/``--set`` or a time operand sets the clock."""
    parsed = parse_args(argv[1:], {"-d", "--date", "-f", "--file", "-r", "--reference"})
    if parsed.has("-s", "--set"):
        return change(ctx, argv, "date --set changes the system clock")
    if any(not operand.startswith("+") for operand in parsed.operands):
        return change(ctx, argv, "date with a time operand changes the system clock")
    return read(ctx, argv, "date only prints the time")


def judge_sysctl(argv: list[str], ctx: Context) -> list[Finding]:
    """``sysctl``: read, unless ``-w``, ``-p``, ``--system`` or ``key=value`` write settings."""
    parsed = parse_args(argv[1:], {"-r", "--pattern"})
    if parsed.has("-w", "--write", "-p", "--load", "-f", "--system"):
        return change(ctx, argv, "sysctl -w/-p/--system changes kernel parameters")
    if any("=" in operand for operand in parsed.operands):
        return change(ctx, argv, "sysctl key=value changes kernel parameters")
    return read(ctx, argv, "sysctl only reads kernel parameters")


def judge_crontab(argv: list[str], ctx: Context) -> list[Finding]:
    """``crontab -l`` is read; ``-e``, ``-r`` and installing a file (or stdin) are a change."""
    parsed = parse_args(argv[1:], {"-u"})
    if parsed.has("-l") and not parsed.has("-e", "-r") and not parsed.operands:
        return read(ctx, argv, "crontab -l only lists a crontab")
    return change(ctx, argv, "crontab -e/-r/FILE replaces or removes a crontab")


def judge_kill(argv: list[str], ctx: Context) -> list[Finding]:
    """``kill``: listing signals and signal 0 (a liveness check) are read; signals change."""
    args = argv[1:]
    if any(arg in {"-l", "-L", "--list", "--table"} or arg.startswith("--list=") for arg in args):
        return read(ctx, argv, "kill -l only lists signal names")
    if args[:1] in (["-0"], ["-s0"]) or args[:2] in (["-s", "0"], ["-n", "0"]):
        return read(ctx, argv, "kill -0 only checks that a process exists")
    return change(ctx, argv, "kill sends a signal to processes")


def judge_iptables(argv: list[str], ctx: Context) -> list[Finding]:
    """``iptables``/``ip6tables``/``ebtables``: ``-L``/``-S``/``-C`` read; other commands change."""
    name = command_name(argv[0])
    letters: set[str] = set()
    for arg in argv[1:]:
        if arg.startswith("--"):
            letters.add(arg.split("=", 1)[0])
        elif arg.startswith("-"):
            letters.update("-" + char for char in arg[1:])
    reading = words("-L --list -S --list-rules -C --check -h --help -V --version")
    writing = words(
        "-A --append -D --delete -I --insert -R --replace -N --new-chain -X --delete-chain -P "
        "--policy -E --rename-chain -F --flush -Z --zero"
    )
    if letters & reading and not letters & writing:
        return read(ctx, argv, f"{name} -L/-S only lists firewall rules")
    return change(ctx, argv, f"{name} changes firewall rules")


def judge_nft(argv: list[str], ctx: Context) -> list[Finding]:
    """``nft list|describe|monitor`` are read; any other nft command changes the ruleset."""
    parsed = parse_args(argv[1:], {"-I", "--includepath", "-T", "--numeric-time", "-d", "--debug"})
    if parsed.has("-f", "--file", "-i", "--interactive"):
        return change(ctx, argv, "nft -f/-i runs nft commands that cannot be judged here")
    if parsed.has("-v", "--version", "-h", "--help") and not parsed.operands:
        return read(ctx, argv, "nft only prints its version")
    commands = [part.split() for part in re.split(r"[;\n]", " ".join(parsed.operands))]
    commands = [words for words in commands if words]
    if commands and all(words[0] in {"list", "describe", "monitor"} for words in commands):
        return read(ctx, argv, "nft list only shows the ruleset")
    return change(ctx, argv, "nft changes the firewall ruleset")


def judge_service(argv: list[str], ctx: Context) -> list[Finding]:
    """``service NAME status``/``--status-all`` are read; other actions change services."""
    name = command_name(argv[0])
    args = argv[1:]
    if "--status-all" in args or args[1:2] == ["status"] or args[:1] == ["status"]:
        return read(ctx, argv, f"{name} status only shows service state")
    if not args and name == "rc-status":
        return read(ctx, argv, "rc-status only shows service state")
    return change(ctx, argv, f"{name} changes service state")


def judge_firewall_cmd(argv: list[str], ctx: Context) -> list[Finding]:
    """``firewall-cmd``: ``--list-*``/``--get-*``/``--query-*``/``--state`` are read."""
    reading = split_words(
        "--list --get --query --info --state --zone --permanent --version -h --help -q --quiet "
        "--check-config"
    )
    options = [arg for arg in argv[1:] if arg.startswith("-")]
    if options and all(option.startswith(reading) for option in options):
        return read(ctx, argv, "firewall-cmd only queries the firewall")
    return change(ctx, argv, "firewall-cmd changes the firewall")


def judge_ufw(argv: list[str], ctx: Context) -> list[Finding]:
    """``ufw status|show|version|app list|app info`` are read; the rest change the firewall."""
    operands = [arg for arg in argv[1:] if not arg.startswith("-")]
    if operands[:1] in (["status"], ["show"], ["version"]) or operands[:2] in (
        ["app", "list"],
        ["app", "info"],
    ):
        return read(ctx, argv, "ufw only shows the firewall state")
    return change(ctx, argv, "ufw changes the firewall")


def judge_getent(argv: list[str], ctx: Context) -> list[Finding]:
    """``getent``: read, except the ``shadow``/``gshadow`` databases (password hashes)."""
    parsed = parse_args(argv[1:], {"-s", "--service"})
    if parsed.operands[:1] in (["shadow"], ["gshadow"]):
        return change(ctx, argv, f"getent {parsed.operands[0]} reads password hashes")
    return read(ctx, argv, "getent only reads account databases")


def judge_resolvectl(argv: list[str], ctx: Context) -> list[Finding]:
    """``resolvectl``: queries and ``dns|domain IFACE`` without values are read."""
    parsed = parse_args(
        argv[1:], {"-i", "--interface", "-p", "--protocol", "-t", "--type", "-c", "--class"}
    )
    sub, rest = (parsed.operands[0], parsed.operands[1:]) if parsed.operands else ("status", [])
    reading = words(
        "query status statistics monitor show-cache show-server-state service openpgp tlsa "
        "log-level"
    )
    per_link = {"dns", "domain", "default-route", "llmnr", "mdns", "dnssec", "dnsovertls", "nta"}
    if sub in reading and (sub != "log-level" or not rest):
        return read(ctx, argv, f"resolvectl {display(sub)} only reads resolver state")
    if sub in per_link and len(rest) <= 1:
        return read(ctx, argv, f"resolvectl {sub} only shows a link setting")
    return change(ctx, argv, f"resolvectl {display(sub)} changes resolver state")


def judge_hostnamectl(argv: list[str], ctx: Context) -> list[Finding]:
    """``hostnamectl [status]`` and getters are read; ``set-*`` or a new value change."""
    parsed = parse_args(argv[1:], {"-H", "--host", "-M", "--machine"})
    ops = parsed.operands
    if not ops or ops[0] == "status" or (not ops[0].startswith("set-") and len(ops) == 1):
        return read(ctx, argv, "hostnamectl only shows the host name")
    return change(ctx, argv, "hostnamectl changes the host name or metadata")


def judge_ps(argv: list[str], ctx: Context) -> list[Finding]:
    """``ps``: read, except the BSD ``e`` option, which prints every process's environment."""
    values = words("-o -O -u -U -g -G -p -q -t -C -k --sort --format --cols --columns --width")
    for operand in parse_args(argv[1:], values).operands:
        if re.fullmatch(r"[A-Za-z]+", operand) and "e" in operand:
            reason = "ps e prints the environment of processes, which may hold secrets"
            return change(ctx, argv, reason)
    return read(ctx, argv, "ps only lists processes")


_CONFIG_CHECKS = {
    "nginx": words("-t -T -v -V -h -?"),
    "apachectl": words("-t -S -M -v -V -h configtest"),
    "apache2ctl": words("-t -S -M -v -V -h configtest"),
    "httpd": words("-t -S -M -v -V -h"),
    "sshd": words("-t -T -V"),
    "haproxy": words("-c -v -vv"),
}


def judge_config_check(argv: list[str], ctx: Context) -> list[Finding]:
    """Daemons whose ``-t``-style options only check or print their configuration."""
    name = command_name(argv[0])
    checks = _CONFIG_CHECKS[name]
    args = set(argv[1:])
    directives = {"-g"} if name == "nginx" else {"-C", "-c"}
    if args & directives and name in {"nginx", "apachectl", "apache2ctl", "httpd"}:
        return change(ctx, argv, f"{name} -g/-C adds directives, which can load modules")
    if args & checks and not args & {"-s", "-k", "start", "stop", "restart", "graceful"}:
        return read(
            ctx,
            argv,
            f"{name} with {' '.join(sorted(args & checks))} only checks its configuration",
        )
    return change(ctx, argv, f"{name} starts or signals the daemon")


def _changes(names: str, reason: str) -> CommandSpec:
    return spec(names, default=CHANGE, reason=reason)


_READ_ONLY_SYSTEM = (
    "free uptime uname id whoami w who last lastb lscpu lsmem lspci lsusb lsmod lsns "
    "lslocks lsipc vmstat iostat mpstat pidstat nproc top pstree pgrep pidof groups "
    "users runlevel hostid modinfo lsinitramfs systemd-cgls systemd-cgtop "
    "lsb_release systemd-detect-virt virt-what ipcs getenforce sestatus aa-status "
    "apparmor_status ntpq"
)

SPECS: list[CommandSpec] = [
    spec(
        "systemctl",
        what="service state",
        read_subcommands=(
            "status show is-active is-enabled is-failed is-system-running list-units "
            "list-unit-files list-timers list-sockets list-jobs list-machines list-dependencies "
            "list-automounts list-paths cat help get-default show-environment"
        ),
        change_subcommands=(
            "start stop restart reload try-restart reload-or-restart try-reload-or-restart "
            "condrestart force-reload enable disable reenable preset preset-all mask unmask link "
            "revert daemon-reload daemon-reexec kill clean freeze thaw isolate reboot poweroff "
            "halt suspend hibernate hybrid-sleep suspend-then-hibernate kexec soft-reboot rescue "
            "emergency default exit switch-root set-default set-environment unset-environment "
            "import-environment edit set-property reset-failed add-wants add-requires bind "
            "mount-image log-level log-target service-watchdogs"
        ),
        value_options=_SYSTEMCTL_VALUES,
    ),
    spec(
        "journalctl",
        what="the journal",
        change_options=(
            "--rotate --flush --sync --relinquish-var --smart-relinquish-var --setup-keys "
            "--update-catalog --cursor-file"
        ),
        change_prefixes="--vacuum-",
    ),
    spec(
        "dmesg",
        what="the kernel ring buffer",
        change_options="-c -C --clear --read-clear -D --console-off -E --console-on -n "
        "--console-level",
    ),
    spec(
        "hostname",
        what="the host name",
        max_operands=0,
        value_options="-F --file",
        change_options="-F --file -b --boot",
    ),
    spec("hostnamectl", judge_hostnamectl),
    spec("date", judge_date),
    spec(
        "timedatectl",
        what="time settings",
        read_subcommands="status show list-timezones timesync-status show-timesync",
        no_subcommand=READ,
    ),
    spec(
        "localectl",
        what="locale settings",
        read_subcommands="status list-locales list-keymaps list-x11-keymap-models "
        "list-x11-keymap-layouts list-x11-keymap-variants list-x11-keymap-options",
        no_subcommand=READ,
    ),
    spec(
        "loginctl",
        what="login sessions",
        read_subcommands="list-sessions session-status show-session list-users user-status "
        "show-user list-seats seat-status show-seat",
        no_subcommand=READ,
    ),
    spec(
        "networkctl",
        what="network links",
        read_subcommands="list status lldp label cat",
        no_subcommand=READ,
    ),
    spec(
        "machinectl",
        what="machines",
        read_subcommands="list status show list-images image-status show-image",
        no_subcommand=READ,
    ),
    spec("coredumpctl", what="core dumps", read_subcommands="list info", no_subcommand=READ),
    spec("resolvectl", judge_resolvectl),
    spec("sysctl", judge_sysctl),
    spec("crontab", judge_crontab),
    spec("kill", judge_kill),
    spec("iptables", judge_iptables),
    spec(
        "iptables-save",
        what="firewall rules",
        value_options="-f --file -M --modprobe -t --table",
        change_options="-f --file -M --modprobe",
    ),
    spec("nft", judge_nft),
    spec("ufw", judge_ufw),
    spec("firewall-cmd", judge_firewall_cmd),
    spec("service rc-service rc-status", judge_service),
    spec("getent", judge_getent),
    spec(_READ_ONLY_SYSTEM, what="system information"),
    spec("ps", judge_ps),
    spec(" ".join(_CONFIG_CHECKS), judge_config_check),
    spec(
        "chronyc",
        what="time synchronisation",
        read_subcommands="tracking sources sourcestats activity ntpdata serverstats clients "
        "rtcdata smoothing selectdata authdata",
        value_options="-h -p -f",
    ),
    spec("fail2ban-client", what="fail2ban", read_subcommands="status ping version get"),
    _changes("setenforce", "{name} changes the SELinux mode"),
    _changes("pkill killall renice", "{name} signals or reprioritises running processes"),
    _changes(
        "useradd usermod userdel groupadd groupmod groupdel adduser deluser addgroup delgroup "
        "chpasswd newusers gpasswd chsh chfn vipw vigr",
        "{name} changes user accounts or passwords",
    ),
    _changes(
        "reboot shutdown poweroff halt telinit init kexec", "{name} reboots or stops the host"
    ),
    _changes(
        "insmod rmmod depmod update-grub grub-install grub-mkconfig update-initramfs dracut",
        "{name} changes the kernel or the boot configuration",
    ),
    _changes("update-rc.d rc-update", "{name} changes which services start at boot"),
    _changes("iptables-restore", "{name} replaces the firewall rules"),
    _changes("at batch atrm", "{name} schedules or removes jobs"),
    _changes("wall logger", "{name} sends messages to users or to the system log"),
    spec("atq", what="scheduled jobs"),
]
