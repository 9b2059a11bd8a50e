#!/usr/bin/env python3
"""Benchmark: authenticated ``GET /api/v1/hosts`` with 100 hosts, loaded by wrk.

For each backend (SQLite, PostgreSQL) this starts ``tend serve`` (one uvicorn worker) on a free
loopback port with a fresh data directory (and, for PostgreSQL, a fresh schema), creates an API
token and 99 hosts (plus the built-in ``local`` host = 100), checks one response, runs one 3 s
warm-up and then ``--rounds`` rounds of::

    wrk -t THREADS -c CONNECTIONS -d DURATIONs --latency --timeout 10s \
        -H "Authorization: Bearer tend_..." http://127.0.0.1:PORT/api/v1/hosts

It prints medians of the rounds (req/s, p50, p99), the PostgreSQL/SQLite ratios, and writes JSON.
Everything runs on 127.0.0.1 and is bounded in time; the script stops by itself.

Usage::

    .venv/bin/python bench/hosts_list.py [--rounds 3] [--duration 10] [--connections 50]
        [--threads 2] [--wrk-timeout 10] [--backends sqlite,postgresql] [--json-out PATH]
        [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy.engine import make_url

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON_OUT = BENCH_DIR / "results" / "hosts_list.json"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")

HOSTS_TOTAL = 100  # including the ``local`` host every new database has
WARMUP_SECONDS = 3
START_TIMEOUT = 60.0  # server start: migrations + first admin (argon2 hash)
STOP_TIMEOUT = 10.0  # after SIGINT, before SIGKILL
HTTP_TIMEOUT = 15.0  # each setup request
PG_CONNECT_TIMEOUT = 5.0
WRK_GRACE = 30.0  # wrk may take this much longer than its duration before it is killed

PASSWORD_LINE = re.compile(r"^\s+password: (\S+)\s*$")
WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
WRK_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
WRK_TOTAL = re.compile(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.MULTILINE)
WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
WRK_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


class BenchError(Exception):
    """The benchmark cannot produce a trustworthy number for a backend."""


class BackendUnavailable(Exception):
    """A backend cannot be benchmarked here (e.g. PostgreSQL unreachable): skip it."""


@dataclass
class Round:
    """The parsed result of one wrk run."""

    requests_per_sec: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]


@dataclass
class BackendResult:
    """Everything measured (or why nothing was) for one backend."""

    backend: str
    status: str = "pending"  # ok | skipped | failed
    reason: str | None = None
    database: str | None = None
    response_bytes: int | None = None
    warmup: Round | None = None
    rounds: list[Round] = field(default_factory=list)

    def median(self, attr: str) -> float:
        """Return the median of one round attribute over the measured rounds."""
        return statistics.median(getattr(r, attr) for r in self.rounds)

    def summary(self) -> dict[str, float] | None:
        """Return medians, min and max over the rounds, or ``None`` without rounds."""
        if not self.rounds:
            return None
        rps = [r.requests_per_sec for r in self.rounds]
        return {
            "requests_per_sec_median": self.median("requests_per_sec"),
            "requests_per_sec_min": min(rps),
            "requests_per_sec_max": max(rps),
            "p50_ms_median": self.median("p50_ms"),
            "p99_ms_median": self.median("p99_ms"),
        }


# --- environment -----------------------------------------------------------------------------


def wrk_version(wrk: str) -> str:
    """Return wrk's version line, e.g. ``wrk debian/4.1.0-3+b2 [epoll]``."""
    proc = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (proc.stdout or proc.stderr).strip().splitlines()
    if not first:
        return "wrk (unknown version)"
    return first[0].split(" Copyright")[0].strip()


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """Return this process's environment without any ``TEND_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEND_")}
    env.update(extra)
    return env


# --- PostgreSQL schema -----------------------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    """Turn a SQLAlchemy URL (``postgresql+asyncpg://...``) into a DSN asyncpg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_execute(url: str, sql: str) -> str:
    import asyncpg  # noqa: PLC0415 - only needed for the PostgreSQL backend

    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=PG_CONNECT_TIMEOUT)
    try:
        await conn.execute(sql, timeout=PG_CONNECT_TIMEOUT)
        return f"PostgreSQL {await conn.fetchval('SHOW server_version')}"
    finally:
        await conn.close(timeout=PG_CONNECT_TIMEOUT)


def create_schema(url: str, schema: str) -> str:
    """Create a fresh schema; return the server version.

    Raises:
        BackendUnavailable: When PostgreSQL cannot be reached or the schema not created.
    """
    try:
        return asyncio.run(_pg_execute(url, f'CREATE SCHEMA "{schema}"'))
    except (OSError, TimeoutError, ImportError) as exc:
        raise BackendUnavailable(f"PostgreSQL unreachable: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # asyncpg's errors share no base class worth importing here
        raise BackendUnavailable(f"PostgreSQL error: {type(exc).__name__}: {exc}") from exc


def drop_schema(url: str, schema: str) -> None:
    """Drop the benchmark schema and everything in it (best effort, reported on failure)."""
    try:
        asyncio.run(_pg_execute(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    except Exception as exc:  # cleanup must not hide the real result
        print(f"warning: could not drop schema {schema}: {exc}", file=sys.stderr)


# --- the server ------------------------------------------------------------------------------


class Server:
    """``tend serve`` as a subprocess on a loopback port, with its stderr collected."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        """Prepare (not start) a server.

        Args:
            env: The complete environment for the server process.
            cwd: Working directory (a temp dir, so no stray ``.env`` is read).
        """
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.password: str | None = None
        self.version: str | None = None
        self._password_seen = threading.Event()
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._reader: threading.Thread | None = None

    def _read_stderr(self, stream: TextIO) -> None:
        for line in stream:
            match = PASSWORD_LINE.match(line)
            if match:
                self.password = match.group(1)
                self._password_seen.set()
                continue  # never keep the password in the error tail
            self._stderr.append(line.rstrip("\n"))

    def stderr_tail(self) -> str:
        """Return the last lines the server wrote to stderr."""
        return "\n".join(self._stderr)

    def start(self) -> None:
        """Start the server and wait until ``/ready`` answers 200 and the password was printed.

        Raises:
            BenchError: When the server exits or is not ready in time.
        """
        cmd = [
            sys.executable,
            "-m",
            "tend",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the server
        )
        assert self.proc.stderr is not None
        self._reader = threading.Thread(target=self._read_stderr, args=(self.proc.stderr,))
        self._reader.daemon = True
        self._reader.start()

        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise BenchError(
                        f"server exited with code {self.proc.returncode}:\n{self.stderr_tail()}"
                    )
                try:
                    response = client.get("/ready")
                    if response.status_code == 200:
                        self.version = str(response.json().get("version"))
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"server not ready after {START_TIMEOUT:.0f} s")
                time.sleep(0.1)
        if not self._password_seen.wait(timeout=max(1.0, deadline - time.monotonic())):
            raise BenchError("server did not print the first admin password")

    def stop(self) -> None:
        """Stop the server: SIGINT, then SIGKILL after a timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print("warning: server ignored SIGINT; killing it", file=sys.stderr)
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(timeout=2.0)


# --- setup through the API -------------------------------------------------------------------


def prepare_data(server: Server) -> tuple[str, int]:
    """Sign in as admin, create an API token and hosts up to 100; check the list once.

    Args:
        server: A started server.

    Returns:
        The API token and the size in bytes of one ``GET /api/v1/hosts`` response body.

    Raises:
        BenchError: When a request fails or the list does not hold exactly 100 hosts.
    """
    assert server.password is not None
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        response = client.post(
            "/api/v1/auth/token", data={"username": "admin", "password": server.password}
        )
        expect(response, 200, "sign in")
        session_auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
        response = client.post("/api/v1/tokens", json={"name": "bench"}, headers=session_auth)
        expect(response, 201, "create API token")
        token = str(response.json()["token"])
        auth = {"Authorization": f"Bearer {token}"}

        existing = client.get("/api/v1/hosts", headers=auth)
        expect(existing, 200, "list hosts")
        missing = HOSTS_TOTAL - len(existing.json())
        for i in range(1, missing + 1):
            host = {
                "name": f"host-{i:03d}",
                "address": f"10.0.{i // 250}.{i % 250 + 1}",
                "tags": ["bench", f"rack-{i % 4 + 1}"],
            }
            expect(client.post("/api/v1/hosts", json=host, headers=auth), 201, "create host")

        response = client.get("/api/v1/hosts", headers=auth)
        expect(response, 200, "list hosts")
        hosts = response.json()
        names = {h["name"] for h in hosts}
        if len(hosts) != HOSTS_TOTAL or len(names) != HOSTS_TOTAL or "local" not in names:
            raise BenchError(f"expected {HOSTS_TOTAL} distinct hosts, got {len(hosts)}")
        return token, len(response.content)


def expect(response: httpx.Response, status: int, what: str) -> None:
    """Raise unless the response has the expected status.

    Raises:
        BenchError: On any other status.
    """
    if response.status_code != status:
        raise BenchError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")


# --- wrk -------------------------------------------------------------------------------------


def parse_wrk(output: str) -> Round:
    """Parse wrk's ``--latency`` output into a round.

    Raises:
        BenchError: When a number is missing from the output.
    """
    rps = WRK_RPS.search(output)
    total = WRK_TOTAL.search(output)
    percentiles = {p: float(v) * UNIT_MS[u] for p, v, u in WRK_PERCENTILE.findall(output)}
    if rps is None or total is None or not {"50", "99"} <= percentiles.keys():
        raise BenchError(f"cannot parse wrk output:\n{output}")
    non_2xx = WRK_NON_2XX.search(output)
    errors = WRK_SOCKET_ERRORS.search(output)
    kinds = ("connect", "read", "write", "timeout")
    return Round(
        requests_per_sec=float(rps.group(1)),
        p50_ms=percentiles["50"],
        p75_ms=percentiles.get("75", float("nan")),
        p90_ms=percentiles.get("90", float("nan")),
        p99_ms=percentiles["99"],
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors={k: int(errors.group(i + 1)) if errors else 0 for i, k in enumerate(kinds)},
    )


def run_wrk(wrk: str, args: argparse.Namespace, url: str, token: str, duration: int) -> Round:
    """Run wrk once against ``url`` and return the parsed, checked round.

    Raises:
        BenchError: When wrk fails, or any response was not 2xx/3xx, or a socket error happened.
    """
    cmd = [
        wrk,
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{duration}s",
        "--latency",
        "--timeout",
        f"{args.wrk_timeout}s",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration + WRK_GRACE, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + WRK_GRACE:.0f} s") from exc
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with {proc.returncode}: {proc.stderr.strip()}")
    result = parse_wrk(proc.stdout)
    if result.non_2xx:
        raise BenchError(f"{result.non_2xx} non-2xx/3xx responses of {result.requests}")
    if any(result.socket_errors.values()):
        raise BenchError(f"wrk socket errors: {result.socket_errors}")
    return result


# --- one backend -----------------------------------------------------------------------------


def bench_backend(backend: str, wrk: str, args: argparse.Namespace) -> BackendResult:
    """Start a server on ``backend``, load it, stop it, clean up; never raises BenchError."""
    result = BackendResult(backend=backend)
    tmp = Path(tempfile.mkdtemp(prefix=f"tend-bench-{backend}-"))
    schema: str | None = None
    server: Server | None = None
    try:
        extra = {
            "TEND_DATA_DIR": str(tmp / "data"),
            "TEND_LOG_LEVEL": "WARNING",
            "TEND_ACCESS_LOG": "false",
        }
        if backend == "postgresql":
            schema = f"bench_{secrets.token_hex(6)}"
            try:
                version = create_schema(args.pg_url, schema)
            except BackendUnavailable:
                schema = None
                raise
            result.database = f"{version}, schema {schema} (dropped afterwards)"
            extra["TEND_DATABASE_URL"] = args.pg_url
            extra["TEND_DATABASE_SCHEMA"] = schema
        else:
            result.database = "SQLite file in a fresh temp dir"
        server = Server(clean_env(extra), cwd=tmp)
        log(f"[{backend}] starting tend serve on {server.base_url}")
        server.start()
        args.tend_version = server.version
        token, result.response_bytes = prepare_data(server)
        url = f"{server.base_url}/api/v1/hosts"
        log(f"[{backend}] {HOSTS_TOTAL} hosts, {result.response_bytes} B/response; warm-up")
        result.warmup = run_wrk(wrk, args, url, token, WARMUP_SECONDS)
        for n in range(1, args.rounds + 1):
            r = run_wrk(wrk, args, url, token, args.duration)
            result.rounds.append(r)
            log(
                f"[{backend}] round {n}/{args.rounds}: {r.requests_per_sec:.1f} req/s, "
                f"p50 {fmt_ms(r.p50_ms)}, p99 {fmt_ms(r.p99_ms)}"
            )
        result.status = "ok"
    except BackendUnavailable as exc:
        result.status, result.reason = "skipped", str(exc)
        log(f"[{backend}] skipped: {exc}")
    except (BenchError, httpx.HTTPError, OSError) as exc:
        result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
        tail = server.stderr_tail() if server else ""
        log(f"[{backend}] FAILED: {exc}" + (f"\nserver stderr:\n{tail}" if tail else ""))
    finally:
        if server is not None:
            server.stop()
        if schema is not None:
            drop_schema(args.pg_url, schema)
        shutil.rmtree(tmp, ignore_errors=True)
    return result


# --- output ----------------------------------------------------------------------------------


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


def fmt_ms(value: float) -> str:
    """Format milliseconds with sensible precision."""
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def header_lines(meta: dict[str, Any]) -> list[str]:
    """Return the lines that say what was measured, with what, where."""
    return [
        f"benchmark : {meta['benchmark']}",
        f"load tool : {meta['load_tool']}  ({meta['load_command']})",
        f"rounds    : {meta['rounds']} x {meta['duration_s']} s after one "
        f"{WARMUP_SECONDS} s warm-up; medians (min-max) over rounds",
        f"server    : tend {meta['tend_version']}, 1 uvicorn worker, access log off, "
        f"log level WARNING, 127.0.0.1",
        f"machine   : {meta['nproc']} CPUs, {meta['cpu_model']}, {meta['os']} "
        "(wrk and the server share it)",
        f"python    : {meta['python']}",
        f"date      : {meta['date']}",
    ]


def table_lines(results: list[BackendResult]) -> list[str]:
    """Return the results table plus the PostgreSQL/SQLite ratios."""
    head = ("backend", "req/s median (min-max)", "p50 median", "p99 median", "rounds")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for res in results:
        summary = res.summary()
        if res.status != "ok" or summary is None:
            notes.append(f"{res.backend}: {res.status.upper()}: {res.reason}")
            continue
        rps = (
            f"{summary['requests_per_sec_median']:.1f} "
            f"({summary['requests_per_sec_min']:.1f}-{summary['requests_per_sec_max']:.1f})"
        )
        p50, p99 = fmt_ms(summary["p50_ms_median"]), fmt_ms(summary["p99_ms_median"])
        rows.append((res.backend, rps, p50, p99, str(len(res.rounds))))
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *rows]
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines += notes
    ratios = compute_ratios(results)
    if ratios:
        lines.append(
            f"ratio postgresql/sqlite: req/s {ratios['requests_per_sec']:.2f}x, "
            f"p99 {ratios['p99_ms']:.2f}x"
        )
    return lines


def compute_ratios(results: list[BackendResult]) -> dict[str, float] | None:
    """Return PostgreSQL/SQLite ratios of the medians, when both backends have rounds."""
    by_name = {r.backend: r.summary() for r in results if r.status == "ok"}
    pg, lite = by_name.get("postgresql"), by_name.get("sqlite")
    if not pg or not lite:
        return None
    return {
        "requests_per_sec": pg["requests_per_sec_median"] / lite["requests_per_sec_median"],
        "p99_ms": pg["p99_ms_median"] / lite["p99_ms_median"],
    }


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per round (10)")
    parser.add_argument("--connections", type=int, default=50, help="open connections (50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--wrk-timeout",
        type=int,
        default=10,
        help="wrk --timeout in s (10; wrk's own default of 2 s would drop slow responses)",
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON_OUT, help="JSON results")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TEND_BENCH_PG_URL", DEFAULT_PG_URL),
        help="SQLAlchemy URL of PostgreSQL (env TEND_BENCH_PG_URL; default %(default)s)",
    )
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown or not args.backends:
        parser.error(f"unknown backend(s) {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    if min(args.rounds, args.duration, args.connections, args.threads, args.wrk_timeout) < 1:
        parser.error("--rounds, --duration, --connections, --threads, --wrk-timeout must be >= 1")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    try:
        args.tend_version = importlib.metadata.version("tend")  # replaced by the server's /ready
    except importlib.metadata.PackageNotFoundError:
        args.tend_version = "unknown"
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code (0 ok, 1 a backend failed, 2 no wrk)."""
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "wrk not found. Install it: sudo apt-get install -y wrk  (Debian/Ubuntu)",
            file=sys.stderr,
        )
        return 2

    results = [bench_backend(backend, wrk, args) for backend in args.backends]

    meta = {
        "benchmark": f"authenticated GET /api/v1/hosts, {HOSTS_TOTAL} hosts, API token auth",
        "load_tool": wrk_version(wrk),
        "load_command": f"wrk -t {args.threads} -c {args.connections} -d {args.duration}s "
        f"--latency --timeout {args.wrk_timeout}s "
        '-H "Authorization: Bearer tend_..." http://127.0.0.1:PORT/api/v1/hosts',
        "rounds": args.rounds,
        "duration_s": args.duration,
        "connections": args.connections,
        "threads": args.threads,
        "wrk_timeout_s": args.wrk_timeout,
        "tend_version": args.tend_version,
        "uvicorn_workers": 1,
        "access_log": False,
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    lines = header_lines(meta)
    lines += [f"database  : {r.backend}: {r.database}" for r in results if r.database]
    lines += ["", *table_lines(results)]
    print("\n".join(lines))

    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": meta,
        "backends": [{**asdict(r), "summary": r.summary()} for r in results],
        "ratios_postgresql_over_sqlite": compute_ratios(results),
    }
    args.json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON written to {args.json_out}")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
