"""Knowledge about paths: secret files, raw devices and system trees that must not be wiped.

Paths are judged after normalisation (``//``, ``/./`` and ``..`` collapsed, ``~`` expanded).
``~`` is taken to be ``/root``: commands usually run as root on managed hosts, and assuming the
most sensitive home directory errs on the safe side. A path may be a *pattern*: text known only
at run time (:data:`~tend.execution.policy.argv.UNKNOWN`) always stands for "anything", and in
shell context ``*``, ``?``, ``[...]`` and ``{a,b}`` are globs. A pattern is judged by whether it
*could* name a secret, a device or a protected tree.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from tend.execution.policy.argv import UNKNOWN, is_pattern, split_words, to_fnmatch, words
from tend.execution.policy.devices import device_kind

HOME = "/root"
SYSTEM_BIN_DIRS = frozenset(
    ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/snap/bin"]
)
_PROC_LINK = re.compile(r"[^/]+(?:/task/[^/]+)?/(?:root|cwd)")


def expand_home(path: str) -> str:
    """Expand a leading ``~`` or ``~user`` (``~`` is taken to be ``/root``)."""
    if not path.startswith("~"):
        return path
    user, slash, rest = path[1:].partition("/")
    home = HOME if user in {"", "root"} else f"/home/{user}"
    return home + slash + rest


def normalise(path: str, cwd: str | None = None) -> str:
    """Normalise a path: expand ``~``, join a relative path to ``cwd``, collapse ``//``, ``..``.

    Args:
        path: The path as written.
        cwd: The working directory when known (absolute), else ``None``.

    Returns:
        The normalised path; relative paths stay relative when ``cwd`` is unknown.
    """
    if not path:
        return path
    text = expand_home(path)
    if cwd is not None and not text.startswith("/"):
        text = f"{cwd}/{text}"
    return _resolve(text)


def _resolve(path: str) -> str:
    """Collapse ``//``, ``.`` and ``..`` like the kernel does for ``/proc`` magic links.

    ``/proc/PID/root`` is the root directory as that process sees it (``/proc/1/root/etc`` is
    ``/etc`` and ``..`` stops there); ``/proc/PID/cwd`` is a directory known only at run time.
    """
    absolute = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in {"", "."}:
            continue
        if part == "..":
            if parts and parts[-1] not in {"..", UNKNOWN}:
                parts.pop()
            elif not absolute and parts[-1:] != [UNKNOWN]:
                parts.append("..")
            continue
        parts.append(part)
        if absolute and parts[0] == "proc" and _PROC_LINK.fullmatch("/".join(parts[1:])):
            parts = [] if parts[-1] == "root" else [UNKNOWN]
            absolute = parts == []
    text = "/".join(parts)
    if absolute:
        return "/" + text
    return text or "."


def path_candidates(token: str) -> list[str]:
    """Return the strings inside one argument that may name a local path.

    Besides the argument itself: the value after ``=`` (``if=/dev/sda``, ``--file=x``), the part
    after ``@`` (``-d @/etc/shadow``), the path of a ``file://`` URL and, for an option with a
    glued value (``-f/etc/shadow``), the part from the first ``/``.
    """
    found = [token]
    if "=" in token:
        found.append(token.split("=", 1)[1])
    for text in list(found):
        if text.startswith("@"):
            found.append(text[1:])
        if text.startswith("file://"):
            rest = text[len("file://") :]
            found.append(rest[rest.find("/") :] if "/" in rest else rest)
    if token.startswith("-") and "/" in token:
        found.append(token[token.index("/") :])
    return found


# --- secrets -----------------------------------------------------------------------------------

_ABSOLUTE_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), what)
    for pattern, what in (
        (r"/etc/g?shadow-?|/etc/security/opasswd", "password hashes"),
        (r"/etc/sudoers|/etc/sudoers\.d(?:/.*)?", "the sudo policy"),
        (r"/etc/ssh/ssh_host_[^/]*_key", "an SSH host private key"),
        (r"/proc/[^/]+(?:/task/[^/]+)?/(?:environ|mem)|/proc/kcore", "process memory or environ"),
        (r"/proc/[^/]+(?:/task/[^/]+)?/(?:fd|map_files)/.+", "another process's open files"),
        (r"/etc/(?:ssl|pki/tls|pki/CA)/private(?:/.*)?", "TLS private keys"),
        (r"/etc/wireguard(?:/.*)?", "WireGuard keys"),
        (r"/etc/kubernetes/(?:admin\.conf|pki(?:/.*)?)", "Kubernetes credentials"),
        (r"/etc/mysql/debian\.cnf|/etc/NetworkManager/system-connections/.*", "stored passwords"),
    )
)
_ROOT_HOME = re.compile(r"/root(?:/.*)?")
_SSH_PUBLIC = words("known_hosts known_hosts.old authorized_keys authorized_keys2 config")
_KEY_NAMES = words("id_rsa id_dsa id_ecdsa id_ed25519 id_ecdsa_sk id_ed25519_sk identity")
_KEY_SUFFIXES = (".key", ".p12", ".pfx", ".jks", ".keystore", ".keytab", ".ppk")
_CREDENTIAL_NAMES = words(
    ".netrc _netrc .pgpass .my.cnf .git-credentials .vault-token .pypirc .dockercfg .boto .s3cfg"
)
_CREDENTIAL_DIRS = frozenset({".aws", ".gnupg", ".password-store"})
_CERT_DIRS = (
    "/etc/ssl/certs/",
    "/etc/pki/tls/certs/",
    "/etc/pki/ca-trust/",
    "/usr/share/ca-certificates/",
    "/usr/local/share/ca-certificates/",
    "/etc/ca-certificates/",
)
_CERT_WORDS = ("cert", "chain", "bundle", "ca.pem", "ca-", "_ca")

_ABS_EXEMPLARS = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d/admins",
    "/etc/ssh/ssh_host_ed25519_key",
    "/root/.bash_history",
    "/home/user/.ssh/id_ed25519",
    "/proc/1/environ",
    "/etc/ssl/private/server.key",
    "/etc/wireguard/wg0.conf",
    "/dev/sda",
    "/dev/nvme0n1",
    "/dev/mem",
)
_BASENAME_EXEMPLARS = (
    "server.key",
    "privkey.pem",
    ".env",
    "app.env",
    ".env.production",
    ".netrc",
    ".pgpass",
    ".my.cnf",
    "credentials",
    "credentials.json",
    "id_rsa",
    "store.p12",
    ".git-credentials",
)


def _secret_by_name(path: str) -> str | None:
    parts = [part for part in path.split("/") if part]
    if not parts:
        return None
    base = parts[-1]
    if ".ssh" in parts[:-1] and not base.endswith(".pub") and base not in _SSH_PUBLIC:
        return "an SSH private key"
    if base in _KEY_NAMES:
        return "an SSH private key"
    if base.endswith(_KEY_SUFFIXES):
        return "a private key"
    if base.endswith(".pem"):
        certish = any(word in base.lower() for word in _CERT_WORDS) and "key" not in base
        if not certish and not path.startswith(_CERT_DIRS):
            return "a private key"
    if base == ".env" or base.endswith(".env") or base.startswith(".env."):
        return "an environment file with credentials"
    if base in _CREDENTIAL_NAMES or base.startswith("credentials"):
        return "a credentials file"
    if _CREDENTIAL_DIRS.intersection(parts[:-1]) or parts[-2:] in (
        [".kube", "config"],
        [".docker", "config.json"],
    ):
        return "a credentials file"
    return None


def _secret_exact(path: str, *, allow_devices: bool) -> str | None:
    variants = [path]
    if not path.startswith("/"):
        stripped = re.sub(r"^(?:\.\./)+", "", path)
        if stripped != path:
            variants.append("/" + stripped)
    for variant in variants:
        for pattern, what in _ABSOLUTE_SECRETS:
            if pattern.fullmatch(variant):
                return what
        kind = device_kind(variant)
        if kind is not None and not (allow_devices and kind in {"disk", "partition"}):
            return "a raw device"
    by_name = _secret_by_name(path)
    if by_name is not None:
        return by_name
    if any(_ROOT_HOME.fullmatch(variant) for variant in variants):
        return "root's home directory"
    return None


def secret_kind(path: str, *, globbing: bool = False, allow_devices: bool = False) -> str | None:
    """Say whether a normalised path is (or, as a pattern, may be) a secret.

    Secrets: password hashes, sudoers, SSH host and user private keys, ``*.key``/``*.pem``
    private keys (certificates excepted), ``.env`` files, ``/proc/*/environ``, ``.netrc``,
    ``.pgpass``, credentials files, anything under ``/root`` and raw devices.

    Args:
        path: A normalised path (see :func:`normalise`).
        globbing: Whether glob characters are live (the path comes from a shell string).
        allow_devices: Whether raw disks and partitions are acceptable (tools such as ``lsblk``
            that only read device metadata).

    Returns:
        What kind of secret the path is, or ``None``.
    """
    exact = _secret_exact(path, allow_devices=allow_devices)
    if exact is not None or not is_pattern(path, globbing=globbing):
        return exact
    pattern = to_fnmatch(path, globbing=globbing)
    absolute = pattern if pattern.startswith(("/", "*")) else "*/" + pattern
    for exemplar in _ABS_EXEMPLARS:
        if fnmatchcase(exemplar, absolute):
            kind = device_kind(exemplar)
            if kind is None or not (allow_devices and kind in {"disk", "partition"}):
                return "a file that may be a secret"
    base = pattern.rsplit("/", 1)[-1]
    if any(fnmatchcase(exemplar, base) for exemplar in _BASENAME_EXEMPLARS):
        return "a file that may be a secret"
    return None


_SECRET_ANCESTORS = split_words(
    "/ /etc /etc/ssh /etc/ssl /etc/pki /etc/pki/* /etc/kubernetes /etc/mysql /etc/NetworkManager "
    "/home /home/* /home/*/* /proc /proc/* /dev /srv /srv/* /opt /opt/* /var /var/www /var/www/* "
    "/var/lib /var/lib/*"
)


def may_hold_secrets(directory: str, *, globbing: bool = False) -> bool:
    """Whether reading a directory tree recursively may read secrets.

    True for a secret path itself, for ancestors of well-known secret locations (``/``,
    ``/etc``, ``/home/*``, ``/proc`` ...), for application roots (``/srv/*``, ``/opt/*``,
    ``/var/www/*``) where ``.env`` files live, for run-time or glob patterns and for a relative
    path climbing out of an unknown working directory (``.``, ``..``). Other trees such as
    ``/var/log`` or ``/etc/nginx`` are considered free of secrets.

    Args:
        directory: A normalised path.
        globbing: Whether glob characters are live.

    Returns:
        Whether a recursive read could expose a secret.
    """
    if secret_kind(directory, globbing=globbing) is not None:
        return True
    if is_pattern(directory, globbing=globbing):
        return True
    if directory in {".", ".."} or directory.startswith("../"):
        return True
    return any(fnmatchcase(directory, ancestor) for ancestor in _SECRET_ANCESTORS)


# --- trees that must never be wiped -------------------------------------------------------------

_TOP_LEVEL = split_words(
    "bin boot dev etc home lib lib32 lib64 libx32 opt proc root run sbin srv sys usr var snap"
)
_USR = split_words("bin sbin lib lib32 lib64 libexec share include local")
PROTECTED_TREES = frozenset(
    [
        "/",
        *(f"/{name}" for name in _TOP_LEVEL),
        *(f"/usr/{name}" for name in _USR),
        "/var/lib",
        "/boot/efi",
    ]
)
_WIDE_TARGETS = tuple(sorted({"/"} | {f"/{name}" for name in _TOP_LEVEL}))


def protected_tree(path: str, *, globbing: bool = False) -> str | None:
    """Say whether removing ``path`` recursively would wipe the system.

    Protected: ``/``, top-level system directories (``/etc``, ``/usr``, ``/bin``, ``/sbin``,
    ``/lib*``, ``/boot``, ``/var``, ``/home``, ``/root``, ``/dev``, ``/proc``, ``/sys``, ``/opt``,
    ``/srv``, ``/run``, ``/snap``), key second-level ones (``/usr/lib``, ``/var/lib`` ...), their
    contents (``/etc/*``), ``..``-only relative paths (which may climb to ``/`` from an unknown
    working directory) and patterns that may match ``/`` or a top-level directory (``$DIR``,
    ``/$X``, ``/e*``).

    Args:
        path: A normalised path.
        globbing: Whether glob characters are live.

    Returns:
        A description of what would be wiped, or ``None``.
    """
    if path in PROTECTED_TREES:
        return "the root filesystem" if path == "/" else f"the system directory {path}"
    if path.endswith(("/*", "/.*")):
        parent = path.rsplit("/", 1)[0] or "/"
        if parent in PROTECTED_TREES:
            return f"everything in {parent}"
    if re.fullmatch(r"\.\.(?:/\.\.)*", path):
        return "a parent directory that may be /"
    if is_pattern(path, globbing=globbing) and path.startswith(("/", UNKNOWN, "{")):
        pattern = to_fnmatch(path, globbing=globbing)
        for target in _WIDE_TARGETS:
            if fnmatchcase(target, pattern):
                return f"a path that may expand to {target}"
    return None
