"""Knowledge about tool suites with many subcommands: docker, git, kubectl, openssl."""

from __future__ import annotations

import re

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


_GIT_READ = words(
    "status log show diff blame ls-files ls-tree ls-remote rev-parse rev-list describe shortlog "
    "cat-file grep version help show-ref show-branch whatchanged count-objects check-ignore "
    "check-attr name-rev merge-base var for-each-ref verify-commit verify-tag annotate"
)
_GIT_LISTING = {
    "branch": words(
        "-a --all -r --remotes -l --list -v -vv --verbose --merged --no-merged "
        "--contains --no-contains --show-current --sort --format --color "
        "--no-color --points-at -q --column --no-column"
    ),
    "tag": words(
        "-l --list -n --sort --format --contains --no-contains --merged --no-merged "
        "--points-at --column --color"
    ),
    "remote": words("-v --verbose"),
    "config": words(
        "--get --get-all --get-regexp --list -l --show-origin --show-scope "
        "--name-only --global --system --local --worktree -z --null --type "
        "--includes --default"
    ),
}
_GIT_NESTED_READ = {
    "stash": words("list show"),
    "remote": words("show get-url"),
    "worktree": words("list"),
    "submodule": words("status summary"),
    "notes": words("list show"),
    "reflog": words("show"),
}
_GIT_BARE_READ = frozenset({"submodule", "notes", "reflog"})


def judge_git(argv: list[str], ctx: Context) -> list[Finding]:
    """``git``: inspection subcommands are read; anything that writes a repository changes."""
    parsed = parse_args(
        argv[1:],
        {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"},
        stop_at_operand=True,
    )
    if parsed.has("-c", "--config-env", "--exec-path"):
        return change(ctx, argv, "git -c can configure commands for git to run")
    if any(arg.startswith(("--output", "--ext-diff", "--textconv")) for arg in argv[1:]):
        return change(ctx, argv, "git --output/--ext-diff writes files or runs programs")
    if not parsed.operands:
        return read(ctx, argv, "git without a subcommand only prints help")
    sub, rest = parsed.operands[0], parsed.operands[1:]
    if sub in _GIT_READ:
        return read(ctx, argv, f"git {sub} only reads the repository")
    sub_parsed = parse_args(rest, {"--sort", "--format", "--contains", "--points-at", "--type"})
    first = sub_parsed.operands[0] if sub_parsed.operands else None
    if first in _GIT_NESTED_READ.get(sub, ()) or (first is None and sub in _GIT_BARE_READ):
        return read(ctx, argv, f"git {sub} only reads the repository")
    listing = _GIT_LISTING.get(sub)
    if listing is not None and all(option in listing for option, _ in sub_parsed.options):
        if sub == "config":
            ok = sub_parsed.has("--get", "--get-all", "--get-regexp", "--list", "-l")
        else:
            ok = first is None or sub_parsed.has("-l", "--list")
        if ok:
            return read(ctx, argv, f"git {sub} only lists")
    return change(ctx, argv, f"git {display(sub)} changes a repository or talks to a remote")


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
        },
    )
    ops = parsed.operands
    if not ops:
        return read(ctx, argv, "kubectl without a subcommand only prints help")
    kinds = {part.split(".")[0].lower() for op in ops[1:] for part in re.split(r"[,/]", op)}
    if kinds & {"secret", "secrets"}:
        return change(ctx, argv, f"kubectl {display(ops[0])} of secrets exposes credentials")
    if parsed.has("--raw") and ops[0] == "config":
        return change(ctx, argv, "kubectl config view --raw prints credentials")
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
    "-writerand -sess_out -msgfile -keylogfile -key -passin -passout"
)


def judge_openssl(argv: list[str], ctx: Context) -> list[Finding]:
    """``openssl x509|req|verify|s_client ...`` without output or key options are read."""
    sub = argv[1] if len(argv) > 1 else ""
    if sub not in _OPENSSL_READ:
        return change(ctx, argv, f"openssl {display(sub)} can create keys or write files")
    for arg in argv[2:]:
        if arg.split("=", 1)[0] in _OPENSSL_WRITES:
            return change(ctx, argv, f"openssl {sub} {arg} writes files or uses private keys")
    return read(ctx, argv, f"openssl {sub} only reads certificates or connections")


def judge_ssh_keygen(argv: list[str], ctx: Context) -> list[Finding]:
    """``ssh-keygen -l``/``-F``/``-L`` only read; other modes write keys or known_hosts."""
    parsed = parse_args(argv[1:], {"-f", "-F", "-E", "-t", "-b", "-C", "-N", "-P", "-R"})
    if parsed.has("-l", "-F", "-L", "-B") and not parsed.has("-R"):
        return read(ctx, argv, "ssh-keygen -l/-F/-L only shows key information")
    return change(ctx, argv, "ssh-keygen creates or changes keys")


SPECS: list[CommandSpec] = [
    spec("docker", judge_docker),
    spec("git", judge_git),
    spec("kubectl", judge_kubectl),
    spec("openssl", judge_openssl),
    spec("ssh-keygen", judge_ssh_keygen),
]
