"""Knowledge about networking commands: ``ip``, ``curl``, ``wget``, ``ss``, ``nmcli`` ..."""

from __future__ import annotations

from urllib.parse import unquote

from tend.execution.policy.argv import command_name, split_words, words
from tend.execution.policy.devices import is_harmless_sink
from tend.execution.policy.knowledge import (
    CHANGE,
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
from tend.execution.policy.paths import normalise, secret_kind

# Objects in the order iproute2 matches abbreviations against them (``ip a`` is ``address``).
_IP_OBJECTS = split_words(
    "address addrlabel maddress route rule neighbor neighbour ntable ntbl link l2tp fou ila "
    "macsec tunnel tunl tuntap tap token tcpmetrics tcp_metrics monitor xfrm mroute mrule netns "
    "netconf vrf sr nexthop mptcp ioam stats help"
)
_IP_READ_VERBS = (
    "show",
    "list",
    "lst",
    "get",
    "save",
    "showdump",
    "help",
    "xstats",
    "afstats",
    "monitor",
    "identify",
    "pids",
    "list-id",
    "status",
)
_IP_CHANGE_VERBS = (
    "add",
    "append",
    "change",
    "chg",
    "replace",
    "delete",
    "del",
    "set",
    "flush",
    "prepend",
    "restore",
    "attach",
    "update",
    "deleteall",
    "exec",
)
_IP_VALUES = frozenset(
    {"-n", "-netns", "-b", "-batch", "-rc", "-rcvbuf", "-l", "-loops", "-f", "-family"}
)


def judge_ip(argv: list[str], ctx: Context) -> list[Finding]:
    """``ip OBJECT [show|list]`` is read; ``add``/``del``/``set``/``flush``... change.

    ``ip netns exec NAME CMD`` is judged by ``CMD``. Verb abbreviations are read only when they
    cannot also abbreviate a changing verb (``ip link s`` means ``set``).
    """
    parsed = parse_args(argv[1:], _IP_VALUES, single_dash_long=True, stop_at_operand=True)
    if parsed.has("-b", "-batch", "-force"):
        return change(ctx, argv, "ip -batch runs ip commands from a file")
    if not parsed.operands:
        return read(ctx, argv, "ip without an object only prints help")
    word, rest = parsed.operands[0], parsed.operands[1:]
    obj = next((name for name in _IP_OBJECTS if name.startswith(word)), None)
    if obj is None:
        return change(ctx, argv, f"ip {display(word)} is not a known ip object")
    if obj == "netns" and rest and rest[0] and "exec".startswith(rest[0]):
        # ``ip netns exec NAME CMD``; with ``-all`` there is no NAME. ``e``/``ex`` abbreviate.
        every = any(len(option) > 1 and "-all".startswith(option) for option, _ in parsed.options)
        command = rest[1:] if every else rest[2:]
        if command:
            return ctx.run(command, "ip")
    if obj == "vrf" and len(rest) >= 3 and rest[0] and "exec".startswith(rest[0]):
        return ctx.run(rest[2:], "ip")
    if obj == "xfrm":
        return change(ctx, argv, "ip xfrm shows or changes IPsec state, including keys")
    if obj in {"monitor", "help"} or not rest:
        return read(ctx, argv, f"ip {obj} only shows network state")
    verb = rest[0]
    if obj == "netns" and "exec".startswith(verb):
        return change(ctx, argv, "ip netns exec without a command is malformed")
    reads = any(name.startswith(verb) for name in _IP_READ_VERBS)
    writes = any(name.startswith(verb) for name in _IP_CHANGE_VERBS)
    if reads and not writes:
        return read(ctx, argv, f"ip {obj} {display(verb)} only shows network state")
    if not reads and not writes and obj != "netns":
        return change(ctx, argv, f"ip {obj} {display(verb)} is not a known read-only verb")
    return change(ctx, argv, f"ip {obj} {display(verb)} changes network configuration")


_CURL_VALUES = words(
    "-o --output -T --upload-file -d --data --data-ascii --data-binary --data-raw "
    "--data-urlencode --json -F --form --form-string -X --request -H --header -u --user -A "
    "--user-agent -e --referer -b --cookie -c --cookie-jar -D --dump-header -K --config -x "
    "--proxy -U --proxy-user -m --max-time --connect-timeout -w --write-out -E --cert --key "
    "--cacert --capath -r --range -C --continue-at --retry --retry-delay --retry-max-time -Y "
    "--speed-limit -y --speed-time --limit-rate --resolve --connect-to --interface --local-port "
    "-z --time-cond --url --unix-socket --abstract-unix-socket --trace --trace-ascii --stderr "
    "--libcurl --etag-save --etag-compare --hsts --alt-svc --output-dir --max-filesize "
    "--max-redirs --noproxy --oauth2-bearer --proto --proto-redir --pass "
    "--request-target "
    "--dns-servers --variable --expand-url --expand-data --cert-type --key-type --ciphers"
)
_CURL_SENDS = ("-d", "--data", "--json", "-F", "--form", "-T", "--upload-file", "--expand-data")
_CURL_WRITES = words(
    "-o --output -c --cookie-jar -D --dump-header --trace --trace-ascii --stderr --libcurl "
    "--etag-save --hsts --alt-svc"
)
_CURL_CHANGES = {
    "-O": "writes files named by the server",
    "--remote-name": "writes files named by the server",
    "--remote-name-all": "writes files named by the server",
    "-K": "reads options (outputs, uploads) from a file",
    "--config": "reads options (outputs, uploads) from a file",
    "-Q": "sends raw commands to the server",
    "--quote": "sends raw commands to the server",
    "--engine": "loads a crypto engine, which may be any library",
}


def _file_url_secret(url: str, ctx: Context, *, globbing: bool) -> str | None:
    """Describe the secret a ``file:`` URL may read (scheme in any case, ``%XX`` decoded)."""
    scheme, colon, rest = url.partition(":")
    if not colon or scheme.lower() != "file":
        return None
    path = unquote(rest)
    if path.startswith("//"):
        path = path[2:]
        path = path[path.find("/") :] if "/" in path else "/"
    for cwd in ctx.cwds:
        kind = secret_kind(normalise(path, cwd), globbing=globbing)
        if kind is not None:
            return f"{display(url)} ({kind})"
    return None


def judge_curl(argv: list[str], ctx: Context) -> list[Finding]:
    """``curl``: a GET/HEAD to stdout is read; uploads, posts and written files change.

    Long options may be abbreviated (curl before 8.x accepts ``--out FILE``); ``file:`` URLs
    are checked for secrets after decoding and curl's own ``{a,b}``/``[a-z]`` globbing;
    ``-w '%output{FILE}'`` writes a file.
    """
    parsed = parse_args(argv[1:], _CURL_VALUES)
    out_dirs = parsed.values("--output-dir")
    out_dir = out_dirs[-1] if out_dirs else None
    for option, value in parsed.options:
        if option.startswith(_CURL_SENDS) or option_is(option, _CURL_SENDS):
            return change(ctx, argv, f"curl {option} sends data to the server")
        for name, what in _CURL_CHANGES.items():
            if option_is(option, [name]):
                return change(ctx, argv, f"curl {option} {what}")
        if option_is(option, ["-X", "--request"]) and (value or "").upper() not in {"GET", "HEAD"}:
            return change(ctx, argv, f"curl -X {display(value or '')} may change remote state")
        if option_is(option, ["-w", "--write-out"]) and "%output{" in (value or ""):
            return change(ctx, argv, "curl -w %output{FILE} writes a file")
        if option_is(option, _CURL_WRITES) and value not in {"-", None}:
            bases = ctx.cwds if out_dir is None else (normalise(out_dir, ctx.cwds[0]),)
            sinks = [normalise(value or "", base) for base in bases]
            if not all(is_harmless_sink(path) for path in sinks):
                return change(ctx, argv, f"curl {option} writes the file {display(value or '')}")
    globbing = not parsed.has("-g", "--globoff")
    for url in parsed.operands + parsed.values("--url"):
        secret = _file_url_secret(url, ctx, globbing=globbing)
        if secret is not None:
            return change(ctx, argv, f"curl reads {secret}")
    return read(ctx, argv, "curl only fetches a URL to its output")


def judge_ss(argv: list[str], ctx: Context) -> list[Finding]:
    """``ss``/``netstat``: read, except ``ss -K`` which kills sockets."""
    parsed = parse_args(
        argv[1:],
        {
            "-f",
            "--family",
            "-A",
            "--query",
            "--socket",
            "-F",
            "--filter",
            "-N",
            "--net",
            "-D",
            "--diag",
        },
    )
    if parsed.has("-K", "--kill"):
        return change(ctx, argv, "ss -K closes sockets")
    if parsed.has("-D", "--diag"):
        return change(ctx, argv, "ss -D dumps raw socket information to a file")
    return read(ctx, argv, f"{command_name(argv[0])} only lists sockets")


def judge_arp_route(argv: list[str], ctx: Context) -> list[Finding]:
    """``arp``/``route``: listing is read; ``-s``/``-d``/``add``/``del`` change."""
    name = command_name(argv[0])
    args = set(argv[1:])
    if args & {"-s", "--set", "-d", "--delete", "-f", "--file", "add", "del", "delete", "flush"}:
        return change(ctx, argv, f"{name} changes the {name} table")
    return read(ctx, argv, f"{name} only lists the {name} table")


def judge_nmcli(argv: list[str], ctx: Context) -> list[Finding]:
    """``nmcli``: status and ``show``/``list`` views are read; ``-s`` and the rest change."""
    parsed = parse_args(
        argv[1:],
        {
            "-f",
            "--fields",
            "-g",
            "--get-values",
            "-m",
            "--mode",
            "-c",
            "--colors",
            "-e",
            "--escape",
            "-w",
            "--wait",
        },
    )
    if parsed.has("-s", "--show-secrets"):
        return change(ctx, argv, "nmcli --show-secrets prints stored passwords")
    ops = parsed.operands
    objects = ("general", "networking", "radio", "connection", "device", "monitor")
    obj = next((name for name in objects if ops and name.startswith(ops[0])), None)
    if not ops or obj == "monitor" or (obj is not None and len(ops) == 1):
        return read(ctx, argv, "nmcli only shows network state")
    viewing = len(ops) > 1 and any(verb.startswith(ops[1]) for verb in ("status", "show", "list"))
    if obj is not None and viewing and (obj != "general" or len(ops) == 2):
        return read(ctx, argv, f"nmcli {obj} {display(ops[1])} only shows network state")
    return change(ctx, argv, "nmcli changes network configuration")


SPECS: list[CommandSpec] = [
    spec("ip", judge_ip),
    spec("curl", judge_curl),
    spec("wget", default=CHANGE, reason="wget downloads files to disk"),
    spec("ss netstat", judge_ss),
    spec("arp route", judge_arp_route),
    spec("nmcli", judge_nmcli),
    spec(
        "traceroute traceroute6 tracepath mtr dig host nslookup whois nstat",
        what="network state",
    ),
    spec("ifconfig iwconfig", what="network interfaces", max_operands=1),
    spec(
        "nc ncat netcat socat telnet nmap tcpdump tshark iftop nethogs ftp lftp",
        default=CHANGE,
        reason="{name} can send data to other hosts or capture traffic",
    ),
]
