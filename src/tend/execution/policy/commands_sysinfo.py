"""Information commands with a mode that writes, changes settings or floods the network.

Each is read, except: ``lastlog -C/-S`` (clear or set login records), ``lshw -dump FILE`` and
``dmidecode --dump-bin FILE`` (write files), ``sensors -s`` (sets chip limits),
``systemd-analyze set-log-level|set-log-target|service-watchdogs ...`` (change the service
manager), ``named-checkzone -o FILE`` (writes the zone), ``named-checkconf -p`` without ``-x``
(prints TSIG and other keys) and ``ping -f`` (flood ping).
"""

from __future__ import annotations

from tend.execution.policy.argv import command_name, words
from tend.execution.policy.knowledge import (
    CommandSpec,
    Context,
    Finding,
    change,
    parse_args,
    read,
    spec,
)

_VALUES = {
    "lastlog": words("-b --before -t --time -u --user -R --root"),
    "lshw": words("-class -C -c -disable -enable -dump"),
    "dmidecode": words("-d --dev-mem -s --string -t --type -H --handle --from-dump --dump-bin"),
    "sensors": words("-c --config-file"),
    "named-checkzone": words("-c -f -F -i -J -k -l -L -m -M -n -o -r -s -S -t -T -w -D"),
    "named-checkconf": words("-t"),
    "ping": words("-c -i -I -l -m -M -p -Q -s -S -t -T -W -w -F -N -e"),
}
_CHANGES = {
    "lastlog": ("-C --clear -S --set", "clears or sets login records"),
    "lshw": ("-dump --dump", "writes its findings to a database file"),
    "dmidecode": ("--dump-bin", "writes the DMI data to a file"),
    "sensors": ("-s --set", "sets the limits of sensor chips"),
    "named-checkzone": ("-o", "writes the zone to a file"),
    "ping": ("-f", "floods the target with packets"),
}
_ANALYZE_CHANGES = words("set-log-level set-log-target log-level log-target service-watchdogs")


def judge_sysinfo(argv: list[str], ctx: Context) -> list[Finding]:
    """Read, except for the modes listed in the module docstring."""
    name = command_name(argv[0])
    if name == "named-compilezone":
        return change(ctx, argv, "named-compilezone writes the compiled zone to a file")
    family = "ping" if name == "ping6" else name
    single_dash_long = family == "lshw"
    parsed = parse_args(argv[1:], _VALUES.get(family, ()), single_dash_long=single_dash_long)
    options, what = _CHANGES.get(family, ("", ""))
    if options and parsed.has(*options.split()):
        return change(ctx, argv, f"{name} {options.split()[0]} {what}")
    if family == "named-checkconf" and parsed.has("-p") and not parsed.has("-x"):
        return change(ctx, argv, "named-checkconf -p prints the configuration with its keys")
    if family == "systemd-analyze":
        ops = parsed.operands
        if ops and ops[0] in _ANALYZE_CHANGES and (ops[0].startswith("set-") or len(ops) > 1):
            return change(ctx, argv, f"systemd-analyze {ops[0]} changes the service manager")
    what = "network state" if family == "ping" else "system information"
    return read(ctx, argv, f"{name} only reads {what}")


SPECS: list[CommandSpec] = [
    spec(
        "lastlog lshw dmidecode sensors systemd-analyze named-checkzone named-compilezone "
        "named-checkconf ping ping6",
        judge_sysinfo,
    ),
]
