"""The one command the remote collector runs: a read-only ``sh -c`` script, fixed at import.

One round trip prints everything a collection needs, each part after a marker line
``@@tend:NAME``: kernel counters from /proc, ``df`` for space and inodes, the process table,
failed systemd units (only where systemd runs) and the reboot-required flag. It needs nothing
but a POSIX shell and the usual base utilities; nothing is installed and no Python runs there.
The process table and user names come last so that, should the output ever be cut at the cap,
the host counters are still whole. ``timeout`` bounds the commands that can hang on a broken
host (``df`` on a stale network mount, ``systemctl`` with a stuck D-Bus).
"""

from __future__ import annotations

MARKER = "@@tend:"

# (section, shell command printing it); the order is the order of the output.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("stat", "grep ^cpu /proc/stat"),
    ("loadavg", "cat /proc/loadavg"),
    ("meminfo", "cat /proc/meminfo"),
    ("vmstat", "grep ^pswp /proc/vmstat"),
    ("uptime", "cat /proc/uptime"),
    ("boot_id", "cat /proc/sys/kernel/random/boot_id"),
    ("diskstats", "cat /proc/diskstats"),
    ("netdev", "cat /proc/net/dev"),
    ("mounts", "cat /proc/mounts"),
    ("df", "timeout 5 df -P -k"),
    ("dfi", "timeout 5 df -P -i"),
    ("conf", "getconf PAGESIZE; getconf CLK_TCK"),
    (
        "systemd",
        "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; "
        "then echo systemd; timeout 5 systemctl --failed --no-legend --plain; fi",
    ),
    (
        "reboot",
        "if [ -e /var/run/reboot-required ]; "
        "then echo required; cat /var/run/reboot-required.pkgs 2>/dev/null; fi",
    ),
    ("users", "ps -eo pid=,user:32= 2>/dev/null"),
    ("procs", "cat /proc/[0-9]*/stat 2>/dev/null"),
)
END = "end"


def _script() -> str:
    parts = [f"echo '{MARKER}{name}'; {command}" for name, command in SECTIONS]
    parts.append(f"echo '{MARKER}{END}'")
    return "; ".join(parts)


SCRIPT = _script()
"""The script, on one line (an argv may not hold a newline)."""

PROBE_ARGV: tuple[str, ...] = ("sh", "-c", SCRIPT)
"""The argv run on every remote host, judged ``read`` by the policy."""
