"""Faults an eval case sets up on this machine (the ``local`` host), and takes down afterwards.

Each recipe is a context manager that makes one problem real — a directory filled with data, a
CPU or memory hog, zombie processes, a listening port, an expiring certificate, a log file with
telling lines — and yields the values a case's question and expectations may name
(``{path}``, ``{pid}``, ``{port}``...). Nothing here needs privileges except ``fill_tmpfs``,
which mounts a small tmpfs and is skipped where mounting is not allowed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

Vars = dict[str, str]
Recipe = Callable[[Path, Mapping[str, Any]], AbstractContextManager[Vars]]

FILLER_LINE = "2026-11-26T10:00:00Z app[311]: request served in 12 ms status=200 path=/health\n"


class FaultUnavailable(RuntimeError):
    """The fault cannot be set up here (e.g. mounting needs privileges); the case is skipped."""


def _spawn(code: str) -> subprocess.Popen[str]:
    # Our own Python running code written in this module: no input from outside.
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def _ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        _stop([proc])
        raise FaultUnavailable("the fault's process did not start")


@contextlib.contextmanager
def fill_dir(workdir: Path, options: Mapping[str, Any]) -> Iterator[Vars]:
    """A directory holding one large file among small ones (``size_mb``, default 64)."""
    root = workdir / "data"
    target = root / str(options.get("name", "cache"))
    target.mkdir(parents=True, exist_ok=True)
    for index in range(3):
        (root / f"small-{index}").mkdir(exist_ok=True)
        (root / f"small-{index}" / "notes.txt").write_text("a few bytes\n")
    blob = target / str(options.get("file", "blob.bin"))
    with blob.open("wb") as handle:
        chunk = os.urandom(1 << 20)
        for _ in range(int(options.get("size_mb", 64))):
            handle.write(chunk)
    yield {"root": str(root), "path": str(target), "file": str(blob)}


@contextlib.contextmanager
def fill_tmpfs(workdir: Path, options: Mapping[str, Any]) -> Iterator[Vars]:
    """A small tmpfs filled past ``percent`` (default 97) — needs the right to mount."""
    mount = workdir / "small-fs"
    mount.mkdir(parents=True, exist_ok=True)
    size_mb = int(options.get("size_mb", 8))
    mount_bin, umount_bin = shutil.which("mount"), shutil.which("umount")
    if mount_bin is None or umount_bin is None:
        raise FaultUnavailable("mount and umount are not installed")
    done = subprocess.run(  # noqa: S603 - fixed argv, the size is an int
        [mount_bin, "-t", "tmpfs", "-o", f"size={size_mb}m", "tend-eval", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise FaultUnavailable(f"cannot mount a tmpfs here: {done.stderr.strip() or 'refused'}")
    try:
        fill = int(size_mb * (1 << 20) * float(options.get("percent", 97)) / 100)
        (mount / "fill.bin").write_bytes(os.urandom(fill))
        yield {"mount": str(mount), "path": str(mount / "fill.bin")}
    finally:
        subprocess.run([umount_bin, "-l", str(mount)], check=False)  # noqa: S603


@contextlib.contextmanager
def cpu_hog(workdir: Path, options: Mapping[str, Any]) -> Iterator[Vars]:
    """Busy processes spinning on the CPU (``processes``, default: one per CPU, at most 8)."""
    count = int(options.get("processes", min(os.cpu_count() or 1, 8)))
    hogs = [_spawn("print('ready', flush=True)\nwhile True:\n    pass") for _ in range(count)]
    try:
        for hog in hogs:
            _ready(hog)
        time.sleep(float(options.get("warmup", 1.0)))
        yield {"pid": str(hogs[0].pid), "pids": " ".join(str(h.pid) for h in hogs)}
    finally:
        _stop(hogs)


@contextlib.contextmanager
def memory_hog(workdir: Path, options: Mapping[str, Any]) -> Iterator[Vars]:
    """A process holding ``mb`` MiB of memory (default 256)."""
    size = int(options.get("mb", 256)) << 20
    hog = _spawn(
        f"import time\ndata = bytearray({size})\nfor i in range(0, {size}, 4096):\n"
        "    data[i] = 1\nprint('ready', flush=True)\ntime.sleep(600)\n"
    )
    try:
        _ready(hog)
        yield {"pid": str(hog.pid)}
    finally:
        _stop([hog])


@contextlib.contextmanager
def zombies(workdir: Path, options: Mapping[str, Any]) -> Iterator[Vars]:
    """A parent that never reaps its exited children (``count``, default 6)."""
    parent = _spawn(
        "import os, time\n"
        f"for _ in range({int(options.get('count', 6))}):\n"
        "    if os.fork() == 0:\n"
        "        os._exit(0)\n"
        "time.sleep(0.3)\nprint('ready', flush=True)\ntime.sleep(600)\n"
    )
    try:
        _ready(parent)
        yield {"pid": str(parent.pid)}
    finally:
        _stop([parent])


@contextlib.contextmanager
def listening_port(workdir: Path, options: Mapping[str, Any]) -> Iterator[Vars]:
    """A process listening on a TCP port of 127.0.0.1 (``port``, default: a free one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", int(options.get("port", 0))))
        port = probe.getsockname()[1]
    server = _spawn(
        "import socket, time\ns = socket.socket()\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('127.0.0.1', {port}))\ns.listen()\nprint('ready', flush=True)\ntime.sleep(600)\n"
    )
    try:
        _ready(server)
        yield {"port": str(port), "pid": str(server.pid)}
    finally:
        _stop([server])


@contextlib.contextmanager
def expiring_cert(workdir: Path, options: Mapping[str, Any]) -> Iterator[Vars]:
    """A certificate in the eval's certificate directory expiring in ``days`` (default 5)."""
    from cryptography import x509  # noqa: PLC0415 - only evals with this fault need it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    name = str(options.get("name", "shop.example.test"))
    now = datetime.now(UTC)
    not_after = now + timedelta(days=float(options.get("days", 5)), hours=1)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = workdir / "certs" / name / "fullchain.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    yield {"path": str(path), "name": name, "days": str(options.get("days", 5))}


@contextlib.contextmanager
def log_file(workdir: Path, options: Mapping[str, Any]) -> Iterator[Vars]:
    """A log file: ``filler_lines`` ordinary lines with ``lines`` placed ``at`` a fraction in."""
    path = workdir / "logs" / str(options.get("name", "app.log"))
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [str(line) + "\n" for line in options.get("lines", [])]
    filler = int(options.get("filler_lines", 200))
    at = int(filler * float(options.get("at", 0.9)))
    with path.open("w") as handle:
        handle.writelines(FILLER_LINE for _ in range(at))
        handle.writelines(lines)
        handle.writelines(FILLER_LINE for _ in range(filler - at))
    yield {"path": str(path), "size": str(path.stat().st_size)}


RECIPES: dict[str, Recipe] = {
    "fill_dir": fill_dir,
    "fill_tmpfs": fill_tmpfs,
    "cpu_hog": cpu_hog,
    "memory_hog": memory_hog,
    "zombies": zombies,
    "listening_port": listening_port,
    "expiring_cert": expiring_cert,
    "log_file": log_file,
}
