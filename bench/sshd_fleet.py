"""A fleet of real OpenSSH servers on loopback addresses, for benchmarks.

:func:`sshd_fleet` starts ``count`` processes of ``/usr/sbin/sshd -D -e -f CONFIG``, one per
loopback address ``127.0.1.X`` on port 2222 (or, when those cannot be bound, on distinct free
ports of 127.0.0.1), each with its own ed25519 host key, all accepting one client ed25519 key for
root. It writes a known_hosts file, an Ansible INI inventory and a parallel-ssh host list, waits
until every server accepts TCP connections, and on exit stops every process it started
(SIGTERM, then SIGKILL) and removes its temp dir.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = Path("/usr/bin/ssh-keygen")
INSTALL_HINT = "apt-get install -y openssh-server"
DEFAULT_PORT = 2222
MAX_HOSTS = 250
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
KEYGEN_TIMEOUT = 30.0

CONFIG_TEMPLATE = """\
ListenAddress {address}:{port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
{set_env}PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 200
MaxSessions 64
LogLevel ERROR
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
"""


class FleetError(Exception):
    """The fleet could not be started."""


@dataclass(slots=True)
class SshdServer:
    """One running sshd."""

    name: str
    address: str
    port: int
    host_key: str  # "ssh-ed25519 AAAA..." (no comment)
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass(slots=True)
class Fleet:
    """The running servers and the files that describe them."""

    directory: Path
    client_key: Path
    client_public_key: str
    known_hosts: Path
    ansible_inventory: Path
    pssh_hosts: Path
    servers: list[SshdServer] = field(default_factory=list)
    session_home: Path | None = None  # HOME of remote sessions when overridden

    @property
    def loopback_aliases(self) -> bool:
        """Whether servers listen on distinct 127.0.1.X addresses (else ports on 127.0.0.1)."""
        return len({s.address for s in self.servers}) == len(self.servers)


def sshd_available() -> bool:
    """Whether the OpenSSH server and ssh-keygen are installed."""
    return SSHD.is_file() and SSH_KEYGEN.is_file()


def generate_key(path: Path, comment: str) -> str:
    """Write an ed25519 key pair with ssh-keygen; return the public key as ``TYPE BASE64``."""
    subprocess.run(
        [str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        timeout=KEYGEN_TIMEOUT,
    )
    path.chmod(0o600)
    public = path.with_name(path.name + ".pub").read_text().split()
    return " ".join(public[:2])


def _can_bind(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like sshd: TIME_WAIT leftovers of a previous run must not make the port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def choose_endpoints(count: int, port: int = DEFAULT_PORT) -> list[tuple[str, int]]:
    """``127.0.1.X:port`` for X = 1..count when all can be bound, else free ports of 127.0.0.1."""
    if not 1 <= count <= MAX_HOSTS:
        raise FleetError(f"the fleet size must be between 1 and {MAX_HOSTS}, not {count}")
    aliases = [(f"127.0.1.{i}", port) for i in range(1, count + 1)]
    if all(_can_bind(address, p) for address, p in aliases):
        return aliases
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(_free_port("127.0.0.1"))
    return [("127.0.0.1", p) for p in sorted(ports)]


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """Live descendants of ``pid``, found through /proc (deepest last)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in parents.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop_servers(servers: list[SshdServer]) -> None:
    """Stop the listeners and their per-connection children: SIGTERM, then SIGKILL."""
    running = [s.process for s in servers if s.process is not None]
    pids: list[int] = []
    for proc in running:
        if proc.poll() is None:
            pids.append(proc.pid)
            pids.extend(_children(proc.pid))
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
    for pid in pids:  # children that ignored SIGTERM (they are not ours to wait for)
        if Path(f"/proc/{pid}").exists():
            _signal(pid, signal.SIGKILL)


def _write_files(fleet: Fleet) -> None:
    fleet.known_hosts.write_text(
        "".join(f"[{s.address}]:{s.port} {s.host_key}\n" for s in fleet.servers)
    )
    lines = ["[bench]"]
    lines += [f"{s.name} ansible_host={s.address} ansible_port={s.port}" for s in fleet.servers]
    lines += ["", "[all:vars]", "ansible_user=root", ""]
    fleet.ansible_inventory.write_text("\n".join(lines))
    fleet.pssh_hosts.write_text("".join(f"{s.address} {s.port}\n" for s in fleet.servers))


@contextlib.contextmanager
def sshd_fleet(
    count: int,
    *,
    port: int = DEFAULT_PORT,
    clean_home: bool = True,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[Fleet]:
    """Run ``count`` sshd servers on loopback for the duration of the block.

    Host ``i`` (1-based) is named ``b-NN`` (zero-padded to two digits).

    With ``clean_home`` (the default) sessions get ``HOME`` set to an empty directory in the temp
    dir (sshd ``SetEnv``), so the remote login shell does not run the local account's
    ``~/.bashrc`` (bash sources it for commands started by sshd). On a developer machine that
    file can cost more per command (pyenv, nvm, ...) than SSH itself, and it would be measured
    identically for every tool; the servers' working directory is still the real home.

    Raises:
        FleetError: When sshd is missing, a server exits early or a port never accepts.
    """
    if not sshd_available():
        raise FleetError(f"{SSHD} is missing; install it with: {INSTALL_HINT}")
    endpoints = choose_endpoints(count, port)
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation dir
    directory = Path(tempfile.mkdtemp(prefix="tend-bench-sshd-"))
    directory.chmod(0o700)
    servers: list[SshdServer] = []
    try:
        client_key = directory / "id_ed25519"
        client_public = generate_key(client_key, "tend-bench-client")
        authorized_keys = directory / "authorized_keys"
        authorized_keys.write_text(client_public + "\n")
        set_env = ""
        if clean_home:
            home = directory / "home"
            home.mkdir(mode=0o755)
            set_env = f"SetEnv HOME={home}\n"
        fleet = Fleet(
            directory=directory,
            client_key=client_key,
            client_public_key=client_public,
            known_hosts=directory / "known_hosts",
            ansible_inventory=directory / "inventory.ini",
            pssh_hosts=directory / "pssh_hosts.txt",
            servers=servers,
            session_home=directory / "home" if clean_home else None,
        )
        width = max(2, len(str(count)))
        for index, (address, server_port) in enumerate(endpoints, start=1):
            name = f"b-{index:0{width}d}"
            host_key_file = directory / f"{name}_host_ed25519"
            config = directory / f"{name}_sshd_config"
            config.write_text(
                CONFIG_TEMPLATE.format(
                    address=address,
                    port=server_port,
                    host_key=host_key_file,
                    pid_file=directory / f"{name}.pid",
                    authorized_keys=authorized_keys,
                    set_env=set_env,
                )
            )
            servers.append(
                SshdServer(
                    name=name,
                    address=address,
                    port=server_port,
                    host_key=generate_key(host_key_file, name),
                    config=config,
                    log=directory / f"{name}.log",
                )
            )
        _write_files(fleet)
        for server in servers:
            with server.log.open("wb") as log:
                server.process = subprocess.Popen(
                    [str(SSHD), "-D", "-e", "-f", str(server.config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        _wait_ready(servers, startup_timeout)
        yield fleet
    finally:
        stop_servers(servers)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(servers: list[SshdServer], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for server in list(pending):
            assert server.process is not None
            if server.process.poll() is not None:
                log = server.log.read_text(errors="replace").strip()
                raise FleetError(
                    f"sshd for {server.name} ({server.address}:{server.port}) exited with "
                    f"{server.process.returncode}: {log or 'no output'}"
                )
            if _accepts(server.address, server.port):
                pending.remove(server)
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending[:5])
            raise FleetError(
                f"{len(pending)} sshd servers not accepting after {timeout:.0f} s: {names}"
            )
        time.sleep(0.05)
