"""Knowledge about tool suites with many subcommands: docker, kubectl, openssl (git: elsewhere)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from tend.execution.policy.argv import command_name, words
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

_DOCKER_READ = words(
    "ps logs inspect images version info stats top port diff history events search help"
)
_DOCKER_GROUPS: dict[str, frozenset[str]] = {
    "container": words("ls list ps inspect logs top port diff stats"),
    "image": words("ls list inspect history"),
    "network": words("ls list inspect"),
    "volume": words("ls list inspect"),
    "system": words("df info events"),
    "context": words("ls list inspect show"),
    "node": words("ls list inspect ps"),
    "service": words("ls list ps inspect logs"),
    "stack": words("ls list ps services"),
    "plugin": words("ls list inspect"),
    "secret": words("ls list inspect"),
    "config": words("ls list"),
    "manifest": words("inspect"),
    "buildx": words("ls inspect du version"),
    "builder": words("ls inspect du"),
    "trust": words("inspect"),
    "compose": words("ps logs config ls images top port version events"),
}
_DOCKER_VALUES = words(
    "-H --host --config -c --context -l --log-level --tlscacert --tlscert --tlskey -f --file "
    "-p --project-name --profile --project-directory --env-file --ansi --progress --parallel"
)


def judge_docker(argv: list[str], ctx: Context) -> list[Finding]:
    """``docker``/``podman``: ``ps``, ``logs``, ``inspect``, ``images`` and ``* ls`` are read."""
    name = command_name(argv[0])
    ops = parse_args(argv[1:], _DOCKER_VALUES).operands
    if not ops:
        return read(ctx, argv, f"{name} without a subcommand only prints help")
    if ops[0] in _DOCKER_READ:
        return read(ctx, argv, f"{name} {ops[0]} only reads container state")
    group = _DOCKER_GROUPS.get(ops[0])
    if group is not None and len(ops) > 1 and ops[1] in group:
        return read(ctx, argv, f"{name} {ops[0]} {ops[1]} only reads container state")
    shown = " ".join(display(op) for op in ops[: 2 if group is not None else 1])
    return change(ctx, argv, f"{name} {shown} changes containers or images")


_KUBECTL_READ = words(
    "get describe logs top explain api-resources api-versions version cluster-info events diff"
)
_KUBECTL_NESTED = {
    "auth": words("can-i whoami"),
    "config": words("view get-contexts current-context get-clusters get-users"),
    "rollout": words("status history"),
}


def judge_kubectl(argv: list[str], ctx: Context) -> list[Finding]:
    """``kubectl get|describe|logs|top ...`` are read, except on secrets; the rest change."""
    parsed = parse_args(
        argv[1:],
        {
            "-n",
            "--namespace",
            "--context",
            "--cluster",
            "--user",
            "--kubeconfig",
            "-s",
            "--server",
            "--token",
            "-o",
            "--output",
            "-l",
            "--selector",
            "-c",
            "--container",
            "--field-selector",
            "--since",
            "--tail",
            "--sort-by",
            "--raw",
            "--output-directory",
        },
    )
    ops = parsed.operands
    if not ops:
        return read(ctx, argv, "kubectl without a subcommand only prints help")
    named = ops[1:] + [unquote(path) for path in parsed.values("--raw")]
    kinds = {part.split(".")[0].lower() for op in named for part in re.split(r"[,/?]", op)}
    if kinds & {"secret", "secrets"}:
        return change(ctx, argv, f"kubectl {display(ops[0])} of secrets exposes credentials")
    if parsed.has("--raw") and ops[0] == "config":
        return change(ctx, argv, "kubectl config view --raw prints credentials")
    if parsed.has("--output-directory"):
        return change(ctx, argv, "kubectl --output-directory writes files")
    if ops[0] in _KUBECTL_READ:
        return read(ctx, argv, f"kubectl {ops[0]} only reads cluster state")
    if len(ops) > 1 and ops[1] in _KUBECTL_NESTED.get(ops[0], ()):
        return read(ctx, argv, f"kubectl {ops[0]} {ops[1]} only reads cluster state")
    return change(ctx, argv, f"kubectl {display(ops[0])} changes cluster state")


_OPENSSL_READ = words(
    "x509 req crl verify version s_client ciphers list dgst asn1parse errstr "
    "help crl2pkcs7 pkcs7 sess_id ocsp storeutl"
)
_OPENSSL_WRITES = words(
    "-out -keyout -new -newkey -genkey -signkey -CAkey -CAcreateserial -CAserial -req -x509 "
    "-writerand -sess_out -msgfile -keylogfile -key -passin -passout -respout -reqout -port "
    "-engine -provider -provider-path -config -ssl_config -ssl_client_engine -rkey -out_trusted"
)


def judge_openssl(argv: list[str], ctx: Context) -> list[Finding]:
    """``openssl x509|req|verify|s_client ...`` without output or key options are read.

    OpenSSL 3 also accepts ``--opt`` and ``-opt=value``. Options that write files (``-out``,
    ``-respout``), start a server (``ocsp -port``) or load code (``-engine``, ``-provider``,
    ``-config``, which can load engines) are a change.
    """
    sub = argv[1] if len(argv) > 1 else ""
    if sub not in _OPENSSL_READ:
        return change(ctx, argv, f"openssl {display(sub)} can create keys or write files")
    for arg in argv[2:]:
        option = arg.split("=", 1)[0]
        if option.startswith("--"):
            option = option[1:]
        if option in _OPENSSL_WRITES:
            return change(
                ctx, argv, f"openssl {sub} {display(arg)} writes files, loads code or uses keys"
            )
    return read(ctx, argv, f"openssl {sub} only reads certificates or connections")


def judge_ssh_keygen(argv: list[str], ctx: Context) -> list[Finding]:
    """``ssh-keygen -l``/``-F``/``-L`` only read; other modes write keys or known_hosts."""
    parsed = parse_args(
        argv[1:], {"-f", "-F", "-E", "-t", "-b", "-C", "-N", "-P", "-R", "-D", "-w", "-O", "-n"}
    )
    if parsed.has("-D", "-w"):
        return change(ctx, argv, "ssh-keygen -D/-w loads a PKCS#11 or FIDO library")
    if parsed.has("-l", "-F", "-L", "-B") and not parsed.has("-R"):
        return read(ctx, argv, "ssh-keygen -l/-F/-L only shows key information")
    return change(ctx, argv, "ssh-keygen creates or changes keys")


SPECS: list[CommandSpec] = [
    spec("docker", judge_docker),
    spec("kubectl", judge_kubectl),
    spec("openssl", judge_openssl),
    spec("ssh-keygen", judge_ssh_keygen),
]
