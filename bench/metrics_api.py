#!/usr/bin/env python3
"""Benchmark: tend's latest-metrics endpoint vs Glances' ``/api/4/all``, loaded by wrk.

Both serve the newest values of the machine they run on, refreshed every ``--interval`` (10)
seconds, from one process on a free 127.0.0.1 port:

- **tend**: ``tend serve`` (one uvicorn worker, fresh data dir, SQLite unless ``--backend
  postgresql``, access log off) with the monitor on; the script signs in, creates an API token
  and waits until host ``local`` has been collected, then loads
  ``GET /api/v1/hosts/local/metrics`` with ``Authorization: Bearer tend_...``;
- **Glances**: ``glances -w --disable-webui -B 127.0.0.1 -p PORT -t INTERVAL`` from this venv,
  loaded on ``GET /api/4/all`` (no authentication configured).

After one 3 s warm-up each, ``--rounds`` rounds alternate which system goes first, each
``wrk -t THREADS -c CONNECTIONS -d DURATIONs --latency --timeout 10s URL``, the same concurrency
for both. Any non-2xx response or socket error fails the run. Printed: medians (min-max) of
req/s, p50 and p99, the response sizes, and the throughput ratio tend / Glances (target >= 2x).

Usage::

    .venv/bin/python bench/metrics_api.py [--rounds 3] [--duration 10] [--connections 50]
        [--threads 2] [--interval 10] [--backend sqlite|postgresql] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
# A sibling script, importable once bench/ is on the path.
from hosts_list import (
    DEFAULT_PG_URL,
    BenchError,
    Round,
    Server,
    clean_env,
    cpu_model,
    create_schema,
    drop_schema,
    expect,
    fmt_ms,
    free_port,
    log,
    parse_wrk,
    wrk_version,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON_OUT = BENCH_DIR / "results" / "metrics_api.json"
WARMUP_SECONDS = 3
WRK_TIMEOUT = 10
READY_TIMEOUT = 60.0
TARGET_RATIO = 2.0


def wrk(tool: str, url: str, args: argparse.Namespace, duration: int, token: str | None) -> Round:
    """Run wrk once; return the checked round.

    Raises:
        BenchError: When wrk fails, a response is not 2xx/3xx or a socket error happened.
    """
    cmd = [tool, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration}s"]
    cmd += ["--latency", "--timeout", f"{WRK_TIMEOUT}s"]
    if token is not None:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    proc = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=duration + 30, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with {proc.returncode}: {proc.stderr.strip()}")
    result = parse_wrk(proc.stdout)
    if result.non_2xx or any(result.socket_errors.values()):
        raise BenchError(f"{url}: {result.non_2xx} non-2xx, socket errors {result.socket_errors}")
    return result


def start_tend(tmp: Path, args: argparse.Namespace) -> tuple[Server, str, int, str | None]:
    """Start tend, make an API token, wait for the first collection of ``local``.

    Returns:
        The server, the token, the response size and the PostgreSQL schema (to drop) if any.
    """
    extra = {
        "TEND_DATA_DIR": str(tmp / "data"),
        "TEND_LOG_LEVEL": "WARNING",
        "TEND_ACCESS_LOG": "false",
        "TEND_MONITOR_INTERVAL": str(args.interval),
    }
    schema = None
    if args.backend == "postgresql":
        schema = f"bench_{secrets.token_hex(6)}"
        create_schema(args.pg_url, schema)
        extra.update(TEND_DATABASE_URL=args.pg_url, TEND_DATABASE_SCHEMA=schema)
    server = Server(clean_env(extra), cwd=tmp)
    server.start()
    assert server.password is not None
    with httpx.Client(base_url=server.base_url, timeout=15) as client:
        signed = client.post(
            "/api/v1/auth/token", data={"username": "admin", "password": server.password}
        )
        expect(signed, 200, "sign in")
        auth = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        created = client.post("/api/v1/tokens", json={"name": "bench"}, headers=auth)
        expect(created, 201, "create API token")
        token = str(created.json()["token"])
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            response = client.get(
                "/api/v1/hosts/local/metrics", headers={"Authorization": f"Bearer {token}"}
            )
            expect(response, 200, "latest metrics")
            body = response.json()
            if body["collected_at"] is not None and len(body["metrics"]) > 20:
                return server, token, len(response.content), schema
            if time.monotonic() > deadline:
                raise BenchError(f"host local not collected after {READY_TIMEOUT:.0f} s: {body}")
            time.sleep(0.5)


class Glances:
    """``glances -w --disable-webui`` on a loopback port."""

    def __init__(self, interval: float) -> None:
        """Prepare (not start) Glances."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/4/all"
        self.interval = interval
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = "unknown"

    def start(self) -> int:
        """Start Glances and wait until ``/api/4/all`` answers; return its response size.

        Raises:
            BenchError: When Glances is missing, exits or does not answer in time.
        """
        exe = Path(sys.executable).with_name("glances")
        if not exe.exists():
            raise BenchError(f"{exe} not found: .venv/bin/pip install glances")
        version = subprocess.run([exe, "-V"], capture_output=True, text=True, check=False)
        self.version = version.stdout.splitlines()[0].split()[-1] if version.stdout else "?"
        cmd = [exe, "-w", "--disable-webui", "-B", "127.0.0.1", "-p", str(self.port)]
        cmd += ["-t", f"{self.interval:g}"]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(timeout=10) as client:
            while True:
                if self.proc.poll() is not None:
                    raise BenchError(f"glances exited with code {self.proc.returncode}")
                try:
                    response = client.get(self.url)
                    if response.status_code == 200 and "cpu" in response.json():
                        return len(response.content)
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"glances not ready after {READY_TIMEOUT:.0f} s")
                time.sleep(0.3)

    def stop(self) -> None:
        """Stop Glances (SIGINT, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def summary(rounds: list[Round]) -> dict[str, float]:
    """Medians (and min/max of req/s) over rounds."""
    rps = [r.requests_per_sec for r in rounds]
    return {
        "requests_per_sec_median": statistics.median(rps),
        "requests_per_sec_min": min(rps),
        "requests_per_sec_max": max(rps),
        "p50_ms_median": statistics.median(r.p50_ms for r in rounds),
        "p99_ms_median": statistics.median(r.p99_ms for r in rounds),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per system (3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per round (10)")
    parser.add_argument("--connections", type=int, default=50, help="open connections (50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--interval", type=float, default=10.0, help="refresh of both, s (10)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg-url", default=os.environ.get("TEND_BENCH_PG_URL", DEFAULT_PG_URL), help="PostgreSQL"
    )
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON_OUT, help="JSON results")
    args = parser.parse_args(argv)
    if min(args.rounds, args.duration, args.connections, args.threads) < 1:
        parser.error("--rounds, --duration, --connections and --threads must be >= 1")
    return args


def process_cpu(pid: int) -> float:
    """Return the CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_count() -> int:
    """Return how many processes run on this machine now."""
    return sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit())


SYSTEMS = {
    "tend": "GET /api/v1/hosts/local/metrics",
    "glances": "GET /api/4/all",
    "tend auth only": "GET /api/v1/metrics/catalog (reference: the same auth, no work)",
}


def measure(
    tool: str, args: argparse.Namespace, server: Server, token: str, glances: Glances
) -> tuple[dict[str, list[Round]], dict[str, list[float]]]:
    """Warm up, then run the alternating rounds; return rounds and server CPU ms per request."""
    assert server.proc is not None
    assert glances.proc is not None
    targets = {
        "tend": (f"{server.base_url}/api/v1/hosts/local/metrics", token, server.proc.pid),
        "glances": (glances.url, None, glances.proc.pid),
        "tend auth only": (f"{server.base_url}/api/v1/metrics/catalog", token, server.proc.pid),
    }
    for url, auth, _ in targets.values():
        wrk(tool, url, args, WARMUP_SECONDS, auth)
    rounds: dict[str, list[Round]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [] for name in targets}
    for n in range(args.rounds):
        order = list(targets) if n % 2 == 0 else ["glances", "tend", "tend auth only"]
        for name in order:
            url, auth, pid = targets[name]
            before = process_cpu(pid)
            r = wrk(tool, url, args, args.duration, auth)
            cpu[name].append((process_cpu(pid) - before) * 1000 / max(r.requests, 1))
            rounds[name].append(r)
            log(
                f"round {n + 1}/{args.rounds} {name:14s}: {r.requests_per_sec:8.1f} req/s, "
                f"p50 {fmt_ms(r.p50_ms)}, p99 {fmt_ms(r.p99_ms)}, "
                f"server CPU {cpu[name][-1]:.2f} ms/request"
            )
    return rounds, cpu


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; return 0 when the target is met, 1 when not or on failure."""
    args = parse_args(argv)
    tool = shutil.which("wrk")
    if tool is None:
        log("wrk not found. Install it: sudo apt-get install -y wrk")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tend-bench-metrics-"))
    server: Server | None = None
    schema: str | None = None
    glances = Glances(args.interval)
    try:
        server, token, tend_bytes, schema = start_tend(tmp, args)
        glances_bytes = glances.start()
        log(f"tend {tend_bytes:,} B/response, glances {glances_bytes:,} B/response; warm-up")
        rounds, cpu = measure(tool, args, server, token, glances)
    except (BenchError, httpx.HTTPError, OSError) as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        if server is not None:
            log(server.stderr_tail())
        return 1
    finally:
        glances.stop()
        if server is not None:
            server.stop()
        if schema is not None:
            drop_schema(args.pg_url, schema)
        shutil.rmtree(tmp, ignore_errors=True)

    figures = {
        name: {**summary(rs), "server_cpu_ms_per_request_median": statistics.median(cpu[name])}
        for name, rs in rounds.items()
    }
    ratio = (
        figures["tend"]["requests_per_sec_median"] / figures["glances"]["requests_per_sec_median"]
    )
    print(
        f"benchmark : latest values of this machine, tend GET /api/v1/hosts/local/metrics "
        f"(API token, {args.backend}) vs Glances GET /api/4/all"
    )
    print(
        f"load      : {wrk_version(tool)}, -t {args.threads} -c {args.connections} "
        f"-d {args.duration}s --latency --timeout {WRK_TIMEOUT}s; {args.rounds} rounds each, "
        f"alternating, after a {WARMUP_SECONDS} s warm-up"
    )
    print(
        f"servers   : tend {server.version if server else '?'} (1 uvicorn worker, monitor every "
        f"{args.interval:g} s), Glances {glances.version} (-t {args.interval:g}); 127.0.0.1"
    )
    print(
        f"machine   : {os.cpu_count()} CPUs, {cpu_model()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()} (wrk shares it)"
    )
    print(
        f"date      : {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at the end "
        f"{os.getloadavg()[0]:.1f}; {process_count()} processes on the machine (Glances "
        "returns them all)"
    )
    print()
    sizes = {"tend": tend_bytes, "glances": glances_bytes}
    head = "system         | req/s median (min-max)  | p50      | p99      | CPU/req  | response"
    print(head)
    print("-" * len(head))
    for name, f in figures.items():
        rps = (
            f"{f['requests_per_sec_median']:.1f} "
            f"({f['requests_per_sec_min']:.1f}-{f['requests_per_sec_max']:.1f})"
        )
        size = f"{sizes[name]:,} B" if name in sizes else "-"
        print(
            f"{name:14s} | {rps:23s} | {fmt_ms(f['p50_ms_median']):8s} | "
            f"{fmt_ms(f['p99_ms_median']):8s} | "
            f"{f['server_cpu_ms_per_request_median']:5.2f} ms | {size}"
        )
    print("(CPU/req: CPU time of the server process per request, median over rounds)")
    met = ratio >= TARGET_RATIO
    print(
        f"throughput tend / glances: {ratio:.2f}x (target >= {TARGET_RATIO:g}x: "
        f"{'met' if met else 'NOT met'})"
    )
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "systems": SYSTEMS,
        "figures": figures,
        "rounds": {name: [asdict(r) for r in rs] for name, rs in rounds.items()},
        "server_cpu_ms_per_request": cpu,
        "response_bytes": sizes,
        "ratio": ratio,
    }
    args.json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
