"""Real OpenSSH servers on loopback for transport tests.

Each :class:`Sshd` runs ``/usr/sbin/sshd -D -e -f CONFIG`` on its own 127.0.0.x address and a
free port, with a fresh ed25519 host key, accepting one client key for the current user.
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncssh

from tend.execution.transports.base import SshTarget

SSHD = Path("/usr/sbin/sshd")
STARTUP_LIMIT = 10.0
_addresses = itertools.cycle(range(20, 250))


def generate_key(path: Path) -> str:
    """Write a new ed25519 private key (mode 0600) and return its OpenSSH public key line."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.write_bytes(key.export_private_key("openssh"))
    path.chmod(0o600)
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def free_port(address: str) -> int:
    """A port that is free on ``address`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def next_address() -> str:
    """A loopback address not handed out recently (127.0.0.20 ... 127.0.0.249)."""
    return f"127.0.0.{next(_addresses)}"


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (found through /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@dataclass
class Sshd:
    """One running sshd and everything a client needs to reach it."""

    workdir: Path
    address: str
    port: int
    user: str
    client_key_path: Path
    host_key_line: str = ""
    allow_tcp_forwarding: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """A host name for targets (the address directory's name)."""
        return f"sshd-{self.address}-{self.port}"

    @property
    def host_key_path(self) -> Path:
        """The server's private host key."""
        return self.workdir / "host_ed25519"

    @property
    def log_path(self) -> Path:
        """sshd's stderr."""
        return self.workdir / "sshd.log"

    def target(self, **overrides: Any) -> SshTarget:
        """An SshTarget for this server: client key, pinned host key (override anything)."""
        base = SshTarget(
            name=self.name,
            address=self.address,
            port=self.port,
            user=self.user,
            key_files=(self.client_key_path,),
            use_agent=False,
            known_host_keys=(self.host_key_line,),
            connect_timeout=5.0,
        )
        return replace(base, **overrides)

    def write_config(self) -> Path:
        """Write sshd_config into the work directory and return its path."""
        root = os.geteuid() == 0
        lines = [
            f"ListenAddress {self.address}:{self.port}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"HostKey {self.host_key_path}",
            f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}",
            "UsePAM no",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password" if root else "PermitRootLogin no",
            f"AllowUsers {self.user}",
            "UseDNS no",
            "PrintMotd no",
            "X11Forwarding no",
            f"AllowTcpForwarding {'yes' if self.allow_tcp_forwarding else 'no'}",
            "LogLevel ERROR",
            "MaxSessions 64",
            "MaxStartups 200",
            "LoginGraceTime 20",
        ]
        path = self.workdir / "sshd_config"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        """Start sshd and wait until it accepts connections (at most 10 s)."""
        if os.geteuid() == 0:
            # sshd's privilege separation directory.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        if not self.host_key_path.exists():
            self.host_key_line = generate_key(self.host_key_path)
        config = self.write_config()
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + STARTUP_LIMIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited at startup: {self.log_path.read_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.address, self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not listen within {STARTUP_LIMIT} s: {self.log_path}")

    def drop_connections(self) -> None:
        """Kill every per-connection sshd (and what runs under it); keep listening."""
        if self.proc is not None:
            _kill(descendants(self.proc.pid))

    def stop(self) -> None:
        """Stop sshd, its connections and everything they run."""
        if self.proc is None:
            return
        procs = descendants(self.proc.pid)
        _kill(procs)
        self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same address, port and host key."""
        self.stop()
        self.start()

    def restart_with_new_host_key(self) -> str:
        """Stop, replace the host key, start again on the same address and port."""
        self.stop()
        self.host_key_line = generate_key(self.host_key_path)
        self.start()
        return self.host_key_line


class SshdFactory:
    """Starts sshd servers for one test (at most ``limit``) and stops them all afterwards."""

    def __init__(self, base: Path, limit: int = 10) -> None:
        """Create the factory; one client key is shared by every server it starts."""
        self.base = base
        self.limit = limit
        self.servers: list[Sshd] = []
        self.user = getpass.getuser()
        self.client_key_path = base / "client_ed25519"
        self.client_key_line = generate_key(self.client_key_path)

    def start(self, count: int = 1, *, allow_tcp_forwarding: bool = False) -> list[Sshd]:
        """Start ``count`` servers, each on its own loopback address."""
        if len(self.servers) + count > self.limit:
            raise RuntimeError(f"at most {self.limit} sshd per test")
        started: list[Sshd] = []
        for _ in range(count):
            address = next_address()
            workdir = self.base / f"sshd{len(self.servers)}"
            workdir.mkdir()
            (workdir / "authorized_keys").write_text(self.client_key_line + "\n")
            server = Sshd(
                workdir=workdir,
                address=address,
                port=free_port(address),
                user=self.user,
                client_key_path=self.client_key_path,
                allow_tcp_forwarding=allow_tcp_forwarding,
            )
            self.servers.append(server)
            server.start()
            started.append(server)
        return started

    def one(self, **kwargs: Any) -> Sshd:
        """Start one server."""
        return self.start(1, **kwargs)[0]

    def stop_all(self) -> None:
        """Stop every server started."""
        for server in self.servers:
            server.stop()
